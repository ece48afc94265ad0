#include "nn/linear.h"

namespace tfm::nn {

Linear::Linear(ParameterStore& store, const std::string& name, int64_t in, int64_t out, bool has_bias)
    : weight(&store.add(name + ".weight", {out, in})),
      bias(has_bias ? &store.add(name + ".bias", {out}) : nullptr) {}

ag::Var Linear::forward(Context& c, ag::Var x) const {
  return ag::linear(x, c.tape.param(*weight), bias ? c.tape.param(*bias) : ag::Var());
}

}  // namespace tfm::nn
