#include "nn/norm.h"

namespace tfm::nn {

Norm::Norm(ParameterStore& store, const std::string& name, int64_t dim, kernels::NormKind k, float e)
    : weight(&store.add(name + ".weight", {dim})), bias(&store.add(name + ".bias", {dim})), kind(k), eps(e) {
  weight->value.fill_(1.0f);
}

ag::Var Norm::forward(Context& c, ag::Var x) const {
  return ag::layer_norm(x, c.tape.param(*weight), c.tape.param(*bias), eps, kind);
}

}  // namespace tfm::nn
