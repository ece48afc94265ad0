// Multi-head attention (Vaswani et al. 2017, section 3.2.2): Q, K, V projections, per-head
// softmax(Q K^T / sqrt(d_k)) V, heads concatenated, output projection. Self-attention passes the same
// input as query and memory; cross-attention passes the encoder output as memory.
// Variants: fewer key/value heads than query heads (grouped-query), no 1/sqrt(d_k) scaling (T5), and
// positions inside attention (RoPE, ALiBi, T5 relative buckets) for self-attention.
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/kinds.h"
#include "nn/linear.h"

namespace tfm::nn {

struct AttentionMask {
  Tensor key_valid;  // U8 [batch, k_len]: 1 = attend, 0 = padding; undefined = all valid
  bool causal = false;
  int64_t window = 0;     // > 0: each query sees only the `window` most recent keys, itself included
  bool additive = false;  // masked as HF's additive mask rather than masked_fill (kernels/cpu/attention.h)
};

struct AttentionSpec {
  int64_t d_model = 0;
  int heads = 1;
  int kv_heads = 1;
  int64_t head_dim = 0;
  bool bias = false;
  bool scale = true;  // scores / sqrt(head_dim)
  float dropout = 0.0f;
  // Positions applied inside this attention. Kinds that act on embeddings (sinusoidal, learned) do
  // nothing here; cross-attention passes one of those.
  PositionKind positions = PositionKind::SinusoidalInterleaved;
  float rope_theta = 10000.0f;
};

struct MultiHeadAttention {
  Linear q_proj, k_proj, v_proj, out_proj;
  Parameter* relative_attention_bias = nullptr;  // T5: [buckets, heads], in the first layer only
  AttentionSpec spec;
  Tensor* keep_probs = nullptr;  // when set, receives the last forward's probabilities (visualisation)

  MultiHeadAttention() = default;
  MultiHeadAttention(ParameterStore& store, const std::string& name, const AttentionSpec& spec);
  // score_bias: T5's relative position bias [heads, q_len, k_len] (required with T5Relative positions;
  // the stack computes it once from its first layer's table and every layer adds it, as HF's T5Stack).
  ag::Var forward(Context& c, ag::Var x, ag::Var memory, const AttentionMask& mask,
                  ag::Var score_bias = {}) const;
};

}  // namespace tfm::nn
