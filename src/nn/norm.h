// Layer normalisation module: the standard LayerNorm or the seed's variant (kernels/cpu/norm.h).
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/parameter_store.h"

namespace tfm::nn {

struct Norm {
  Parameter* weight = nullptr;  // the seed's alpha
  Parameter* bias = nullptr;
  kernels::NormKind kind = kernels::NormKind::LayerNorm;
  float eps = 1e-5f;

  Norm() = default;
  Norm(ParameterStore& store, const std::string& name, int64_t dim, kernels::NormKind kind, float eps);
  ag::Var forward(Context& c, ag::Var x) const;
};

}  // namespace tfm::nn
