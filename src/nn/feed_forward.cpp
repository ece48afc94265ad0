#include "nn/feed_forward.h"

#include "core/error.h"

namespace tfm::nn {

ag::Var activate(ag::Var x, Activation activation) {
  switch (activation) {
    case Activation::ReLU:
      return ag::relu(x);
    case Activation::GeluErf:
      return ag::gelu(x, kernels::GeluKind::Erf);
    case Activation::GeluTanh:
      return ag::gelu(x, kernels::GeluKind::Tanh);
    case Activation::SwiGLU:
      fail("SwiGLU is a gated feed-forward, not an activation of one input");
  }
  fail("unknown activation {}", int(activation));
}

FeedForward::FeedForward(ParameterStore& store, const std::string& prefix, int64_t d_model, int64_t d_ff,
                         bool bias, Activation a, float p)
    : fc1(store, prefix + "fc1", d_model, d_ff, bias),
      fc2(store, prefix + "fc2", d_ff, d_model, bias),
      activation(a),
      dropout(p) {
  if (activation == Activation::SwiGLU) fc_gate = Linear(store, prefix + "fc_gate", d_model, d_ff, bias);
}

ag::Var FeedForward::forward(Context& c, ag::Var x) const {
  // SwiGLU (Llama's MLP): fc2(silu(fc_gate(x)) * fc1(x)), fc_gate = gate_proj, fc1 = up_proj.
  ag::Var h = activation == Activation::SwiGLU ? ag::swiglu(fc_gate.forward(c, x), fc1.forward(c, x))
                                               : activate(fc1.forward(c, x), activation);
  return fc2.forward(c, ag::dropout(h, dropout, c.rng, c.training));
}

}  // namespace tfm::nn
