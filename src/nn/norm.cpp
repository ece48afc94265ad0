#include "nn/norm.h"

#include "core/error.h"

namespace tfm::nn {

Norm::Norm(ParameterStore& store, const std::string& name, int64_t dim, NormType t, float e, bool has_bias)
    : weight(&store.add(name + ".weight", {dim})),
      bias(has_bias ? &store.add(name + ".bias", {dim}) : nullptr),
      type(t),
      eps(e) {
  weight->value.fill_(1.0f);
  if (!has_bias) zero_bias = Tensor::zeros_persistent({dim});
}

ag::Var Norm::forward(Context& c, ag::Var x) const {
  ag::Var beta = bias ? c.tape.param(*bias) : c.tape.leaf(zero_bias);
  switch (type) {
    case NormType::LayerNorm:
      return ag::layer_norm(x, c.tape.param(*weight), beta, eps, kernels::NormKind::LayerNorm);
    case NormType::SeedLayerNorm:
      return ag::layer_norm(x, c.tape.param(*weight), beta, eps, kernels::NormKind::SeedLayerNorm);
    case NormType::RMSNorm:
      fail("RMSNorm not implemented yet");  // wire ag::rms_norm(x, gamma, eps) here
  }
  fail("unknown norm type {}", int(type));
}

}  // namespace tfm::nn
