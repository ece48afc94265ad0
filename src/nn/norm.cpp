#include "nn/norm.h"

#include "core/error.h"

namespace tfm::nn {

Norm::Norm(ParameterStore& store, const std::string& name, int64_t dim, NormType t, float e, bool has_bias)
    : weight(&store.add(name + ".weight", {dim})),
      bias(has_bias ? &store.add(name + ".bias", {dim}) : nullptr),
      type(t),
      eps(e) {
  if (t == NormType::RMSNorm && has_bias) fail("{}: RMSNorm has no bias", name);
  weight->value.fill_(1.0f);
  if (!has_bias) zero_bias = Tensor::zeros_persistent({dim});
}

ag::Var Norm::forward(Context& c, ag::Var x) const {
  if (type == NormType::RMSNorm) return ag::rms_norm(x, c.tape.param(*weight), eps);
  ag::Var beta = bias ? c.tape.param(*bias) : c.tape.leaf(zero_bias);
  const kernels::NormKind kind =
      type == NormType::LayerNorm ? kernels::NormKind::LayerNorm : kernels::NormKind::SeedLayerNorm;
  return ag::layer_norm(x, c.tape.param(*weight), beta, eps, kind);
}

}  // namespace tfm::nn
