// What a module's forward pass needs besides its inputs.
#pragma once

#include "autograd/tape.h"
#include "core/random.h"

namespace tfm::nn {

struct Context {
  ag::Tape& tape;
  bool training = false;  // dropout on
  Rng* rng = nullptr;     // dropout's generator (required when training with dropout > 0)
};

}  // namespace tfm::nn
