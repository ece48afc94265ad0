// Position-wise feed-forward block (paper section 3.3): FFN(x) = fc2(dropout(act(fc1(x)))), with ReLU or
// GELU (erf / tanh); gated with SwiGLU (Llama): fc2(dropout(silu(fc_gate(x)) * fc1(x))).
#pragma once

#include <string>

#include "nn/kinds.h"
#include "nn/linear.h"

namespace tfm::nn {

// act(x) for the ungated activations (ReLU, GELU); the gated SwiGLU is FeedForward's business.
ag::Var activate(ag::Var x, Activation activation);

struct FeedForward {
  Linear fc1, fc2;
  Linear fc_gate;  // SwiGLU only
  Activation activation = Activation::ReLU;
  float dropout = 0.0f;

  FeedForward() = default;
  FeedForward(ParameterStore& store, const std::string& prefix, int64_t d_model, int64_t d_ff, bool bias,
              Activation activation, float dropout);
  ag::Var forward(Context& c, ag::Var x) const;
};

}  // namespace tfm::nn
