// Position-wise feed-forward block: FFN(x) = W2 dropout(relu(W1 x + b1)) + b2 (paper section 3.3).
#pragma once

#include <string>

#include "nn/linear.h"

namespace tfm::nn {

struct FeedForward {
  Linear fc1, fc2;
  float dropout = 0.0f;

  FeedForward() = default;
  FeedForward(ParameterStore& store, const std::string& prefix, int64_t d_model, int64_t d_ff, bool bias,
              float dropout);
  ag::Var forward(Context& c, ag::Var x) const;
};

}  // namespace tfm::nn
