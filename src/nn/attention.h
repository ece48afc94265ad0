// Multi-head attention (Vaswani et al. 2017, section 3.2.2): Q, K, V projections, per-head
// softmax(Q K^T / sqrt(d_k)) V, heads concatenated, output projection. Self-attention passes the same
// input as query and memory; cross-attention passes the encoder output as memory.
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/linear.h"

namespace tfm::nn {

struct AttentionMask {
  Tensor key_valid;  // U8 [batch, k_len]: 1 = attend, 0 = padding; undefined = all valid
  bool causal = false;
};

struct MultiHeadAttention {
  Linear q_proj, k_proj, v_proj, out_proj;
  int heads = 1;
  float dropout = 0.0f;          // on the attention probabilities
  Tensor* keep_probs = nullptr;  // when set, receives the last forward's probabilities (visualisation)

  MultiHeadAttention() = default;
  MultiHeadAttention(ParameterStore& store, const std::string& name, int64_t d_model, int heads, bool bias,
                     float dropout);
  ag::Var forward(Context& c, ag::Var x, ag::Var memory, const AttentionMask& mask) const;
};

}  // namespace tfm::nn
