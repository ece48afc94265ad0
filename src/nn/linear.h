// Fully connected layer y = x W^T + b (weight stored [out, in], as torch.nn.Linear).
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/parameter_store.h"

namespace tfm::nn {

struct Linear {
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;  // null when the layer has none

  Linear() = default;
  Linear(ParameterStore& store, const std::string& name, int64_t in, int64_t out, bool has_bias);
  ag::Var forward(Context& c, ag::Var x) const;
};

}  // namespace tfm::nn
