// What a module's forward pass needs besides its inputs.
#pragma once

#include "autograd/tape.h"
#include "core/random.h"

#include <vector>

namespace tfm::nn {

struct Context {
  ag::Tape& tape;
  bool training = false;  // dropout on
  Rng* rng = nullptr;     // dropout's generator (required when training with dropout > 0)
  // When set, every mixture-of-experts layer appends its router logits [tokens, experts] (in layer order),
  // for the load-balancing loss (Transformer::load_balancing_loss).
  std::vector<ag::Var>* router_logits = nullptr;
};

}  // namespace tfm::nn
