// Multi-head attention (Vaswani et al. 2017, section 3.2.2): Q, K, V projections, per-head
// softmax(Q K^T / sqrt(d_k)) V, heads concatenated, output projection. Self-attention passes the same
// input as query and memory; cross-attention passes the encoder output as memory.
// Variants: fewer key/value heads than query heads (grouped-query), no 1/sqrt(d_k) scaling (T5), and
// positions inside attention (RoPE, ALiBi, T5 relative buckets) for self-attention.
#pragma once

#include <span>
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
  int64_t global = 0;     // > 0: the first `global` positions are global tokens (kernels/cpu/attention.h)
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
  bool linear = false;  // linear attention (kernels/cpu/linear_attention.h) instead of softmax
};

// Decoding with cached keys and values (inference only: nothing is recorded for backward; see
// infer/kv_cache.h). The new tokens of several rows are flattened into one sequence x [1, T, d_model]:
// row r owns tokens [offsets[r], offsets[r + 1]), which sit at key positions past[r], past[r] + 1, ...
// of that row's own keys. keys[r] / values[r] point at the row's key / value rows (time-major,
// kv_heads * head_dim floats each; with `ring`, see infer/kv_cache.h); key_valid[r] (optional) marks
// which of them may be attended to.
struct CachedRows {
  std::span<const int64_t> offsets;  // rows + 1 entries
  std::span<const int64_t> past;     // self-attention: cached keys before the new tokens
  std::span<float*const> keys, values;
  std::span<const uint8_t* const> key_valid;  // empty: every key valid
  std::span<const int64_t> key_len;           // cross-attention: each row's number of memory keys
  int64_t ring = 0;    // > 0: self-attention keys in a ring of this many positions (infer/kv_cache.h)
  int64_t sinks = 0;   // with a ring: the first positions' keys, before the ring
  bool state = false;  // linear attention: keys[r] / values[r] hold the row's sums S and z instead
};

// What self-attention over a KV cache needs beyond the rows: the new tokens' positions and the decoder's
// position-dependent terms.
struct CachedSelf {
  Tensor positions;                           // I64 [1, T]: each new token's position in its row (RoPE)
  int64_t window = 0;                         // sliding window (0: none)
  int64_t global = 0;                         // global tokens (0: none)
  const Parameter* relative_table = nullptr;  // T5: the stack's bias table [buckets, heads] (layer 0's)
  int64_t relative_max_distance = 0;
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

  // Self-attention over a KV cache: projects the new tokens' keys and values, writes them at rows
  // past[r], past[r] + 1, ... of keys[r] / values[r], and attends causally to the row's past and new keys.
  ag::Var forward_cached(Context& c, ag::Var x, const CachedRows& rows, const CachedSelf& self) const;
  // Cross-attention to keys and values projected once per source (project_memory): row r attends to
  // key_len[r] keys.
  ag::Var forward_cross_cached(Context& c, ag::Var x, const CachedRows& rows) const;
};

}  // namespace tfm::nn
