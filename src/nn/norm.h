// Normalisation module over the last dimension: LayerNorm, the seed's variant (kernels/cpu/norm.h) or
// RMSNorm, with or without a bias.
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/kinds.h"
#include "nn/parameter_store.h"

namespace tfm::nn {

struct Norm {
  Parameter* weight = nullptr;  // the seed's alpha
  Parameter* bias = nullptr;    // null without a bias
  Tensor zero_bias;             // beta for a LayerNorm without a bias
  NormType type = NormType::LayerNorm;
  float eps = 1e-5f;

  Norm() = default;
  Norm(ParameterStore& store, const std::string& name, int64_t dim, NormType type, float eps, bool has_bias);
  ag::Var forward(Context& c, ag::Var x) const;
};

}  // namespace tfm::nn
