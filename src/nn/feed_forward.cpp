#include "nn/feed_forward.h"

namespace tfm::nn {

FeedForward::FeedForward(ParameterStore& store, const std::string& prefix, int64_t d_model, int64_t d_ff,
                         bool bias, float p)
    : fc1(store, prefix + "fc1", d_model, d_ff, bias),
      fc2(store, prefix + "fc2", d_ff, d_model, bias),
      dropout(p) {}

ag::Var FeedForward::forward(Context& c, ag::Var x) const {
  ag::Var h = ag::relu(fc1.forward(c, x));
  return fc2.forward(c, ag::dropout(h, dropout, c.rng, c.training));
}

}  // namespace tfm::nn
