#include "nn/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/position_bias.h"

namespace tfm::nn {

namespace {

// BLOOM's ALiBi key positions from the key padding mask (every key real when it is undefined).
Tensor alibi_positions(const Tensor& key_valid, int64_t batch, int64_t k_len) {
  if (key_valid.defined()) return ag::alibi_key_positions(key_valid);
  Tensor all_real = Tensor::empty({batch, k_len}, DType::U8);
  std::fill_n(all_real.data<uint8_t>(), all_real.numel(), uint8_t(1));
  return ag::alibi_key_positions(all_real);
}

// The position term that the attention scores still need once q and k are rotated.
enum class ScoreTerm { None, ALiBi, T5Relative };

// Rotates q and k when spec uses RoPE, at `positions` (a first position shared by every row, or a tensor
// of positions); returns the score term the kind adds instead (ALiBi slopes, T5's relative bias).
// Sinusoidal and learned positions were added to the embeddings and need nothing here.
template <class Positions>
ScoreTerm apply_positions(const AttentionSpec& spec, ag::Var& q, ag::Var& k, const Positions& positions) {
  switch (spec.positions) {
    case PositionKind::SinusoidalInterleaved:
    case PositionKind::SinusoidalHalf:
    case PositionKind::Learned:
      return ScoreTerm::None;
    case PositionKind::RoPE:
      q = ag::rope(q, positions, spec.heads, spec.rope_theta);
      k = ag::rope(k, positions, spec.kv_heads, spec.rope_theta);
      return ScoreTerm::None;
    case PositionKind::ALiBi:
      return ScoreTerm::ALiBi;
    case PositionKind::T5Relative:
      return ScoreTerm::T5Relative;
  }
  return ScoreTerm::None;
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(ParameterStore& store, const std::string& name, const AttentionSpec& s)
    : q_proj(store, name + ".q_proj", s.d_model, s.heads * s.head_dim, s.bias),
      k_proj(store, name + ".k_proj", s.d_model, s.kv_heads * s.head_dim, s.bias),
      v_proj(store, name + ".v_proj", s.d_model, s.kv_heads * s.head_dim, s.bias),
      out_proj(store, name + ".out_proj", s.heads * s.head_dim, s.d_model, s.bias),
      spec(s) {}

ag::Var MultiHeadAttention::forward(Context& c, ag::Var x, ag::Var memory, const AttentionMask& mask,
                                    ag::Var score_bias) const {
  ag::Var q = q_proj.forward(c, x);
  ag::Var k = k_proj.forward(c, memory);
  ag::Var v = v_proj.forward(c, memory);
  ag::AttentionOptions o;
  o.heads = spec.heads;
  o.kv_heads = spec.kv_heads;
  o.scale = spec.scale ? 1.0f / std::sqrt(float(spec.head_dim)) : 1.0f;
  o.key_valid = mask.key_valid;
  o.causal = mask.causal;
  o.window = mask.window;
  o.additive_mask = mask.additive;
  o.dropout = spec.dropout;
  o.rng = c.rng;
  o.keep_probs = keep_probs;
  // RoPE: positions 0, 1, ... in every row, as HF's forward without position_ids (left padding included).
  const ScoreTerm term = apply_positions(spec, q, k, int64_t{0});
  if (term == ScoreTerm::ALiBi) {
    o.alibi_slopes = ag::alibi_slopes(spec.heads);
    o.alibi_positions = alibi_positions(mask.key_valid, memory.shape()[0], memory.shape()[1]);
  }
  if (term == ScoreTerm::T5Relative)
    TFM_CHECK(score_bias.defined(), "T5 relative attention needs the stack's position bias");
  return out_proj.forward(c, ag::attention(q, k, v, o, c.training, score_bias));
}

namespace {

// Score terms that depend on positions, for one row of cached decoding: ALiBi slopes (keys at positions
// 0, 1, ... of the row) or T5's relative bias looked up for the row's queries.
struct RowBias {
  const float* alibi_slopes = nullptr;     // [heads]
  const Tensor* relative_table = nullptr;  // F32 [buckets, heads], causal buckets
  int64_t relative_max_distance = 0;
};

// Attention of each row's queries (its slice of q [1, T, heads * head_dim]) to its own keys: one
// kernel call per row, rows in parallel. Query t of row r sits at key position past[r] + t.
Tensor attend_rows(const AttentionSpec& spec, const Tensor& q, const CachedRows& rows, bool causal,
                   int64_t window, const RowBias& row_bias) {
  const int64_t n_rows = int64_t(rows.offsets.size()) - 1;
  const int64_t q_width = spec.heads * spec.head_dim, kv_width = spec.kv_heads * spec.head_dim;
  Tensor out = Tensor::empty(q.shape());
  const float scale = spec.scale ? 1.0f / std::sqrt(float(spec.head_dim)) : 1.0f;
  const float* qp = q.f32();
  float* op = out.f32();
  const bool flash = ag::attention_kernel() == ag::AttentionKernel::Flash;
#pragma omp parallel for schedule(dynamic)
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t first = rows.offsets[r], count = rows.offsets[r + 1] - first;
    const int64_t past = rows.past.empty() ? 0 : rows.past[r];
    kernels::AttentionDims d;
    d.batch = 1;
    d.q_len = count;
    d.k_len = rows.key_len.empty() ? past + count : rows.key_len[r];
    d.heads = spec.heads;
    d.kv_heads = spec.kv_heads;
    d.head_dim = spec.head_dim;
    d.q_stride = q_width;
    d.k_stride = d.v_stride = kv_width;
    kernels::AttentionMask mask;
    mask.key_valid = rows.key_valid.empty() ? nullptr : rows.key_valid[r];
    mask.causal = causal;
    mask.query_offset = past;
    mask.window = window;
    kernels::AttentionBias bias;
    std::vector<float> key_positions, scores;
    std::vector<int64_t> buckets;
    if (row_bias.alibi_slopes) {
      key_positions.resize(size_t(d.k_len));
      for (int64_t j = 0; j < d.k_len; ++j) key_positions[size_t(j)] = float(j);
      bias.alibi_slopes = row_bias.alibi_slopes;
      bias.key_positions = key_positions.data();
    }
    if (row_bias.relative_table) {
      // The full forward's relative_position_bias, for queries at key positions past, past + 1, ...
      const Tensor& table = *row_bias.relative_table;
      const int64_t cells = count * d.k_len, heads = table.size(1);
      buckets.resize(size_t(cells));
      kernels::relative_position_buckets(count, d.k_len, past, /*bidirectional=*/false, table.size(0),
                                         row_bias.relative_max_distance, buckets.data());
      scores.resize(size_t(heads * cells));
      kernels::relative_bias_forward(table.f32(), heads, buckets.data(), cells, scores.data());
      bias.scores = scores.data();
    }
    if (flash)
      kernels::flash_attention_forward(d, mask, bias, scale, {}, qp + first * q_width, rows.keys[r],
                                       rows.values[r], op + first * q_width, nullptr);
    else
      kernels::attention_forward(d, mask, bias, scale, {}, qp + first * q_width, rows.keys[r], rows.values[r],
                                 op + first * q_width, nullptr);
  }
  return out;
}

}  // namespace

ag::Var MultiHeadAttention::forward_cached(Context& c, ag::Var x, const CachedRows& rows,
                                           const CachedSelf& self) const {
  ag::Var q_var = q_proj.forward(c, x), k_var = k_proj.forward(c, x);
  RowBias row_bias;
  Tensor slopes;
  const ScoreTerm term = apply_positions(spec, q_var, k_var, self.positions);
  if (term == ScoreTerm::ALiBi) {
    slopes = ag::alibi_slopes(spec.heads);
    row_bias.alibi_slopes = slopes.f32();
  }
  if (term == ScoreTerm::T5Relative) {
    TFM_CHECK(self.relative_table, "T5 relative attention needs the stack's bias table");
    row_bias.relative_table = &self.relative_table->value;
    row_bias.relative_max_distance = self.relative_max_distance;
  }
  const Tensor k = k_var.value();
  const Tensor v = v_proj.forward(c, x).value();
  const int64_t width = spec.kv_heads * spec.head_dim;
  for (size_t r = 0; r + 1 < rows.offsets.size(); ++r) {
    const int64_t first = rows.offsets[r], count = rows.offsets[r + 1] - first;
    std::copy_n(k.f32() + first * width, count * width, rows.keys[r] + rows.past[r] * width);
    std::copy_n(v.f32() + first * width, count * width, rows.values[r] + rows.past[r] * width);
  }
  return out_proj.forward(
      c, c.tape.leaf(attend_rows(spec, q_var.value(), rows, /*causal=*/true, self.window, row_bias)));
}

ag::Var MultiHeadAttention::forward_cross_cached(Context& c, ag::Var x, const CachedRows& rows) const {
  const Tensor q = q_proj.forward(c, x).value();
  return out_proj.forward(c, c.tape.leaf(attend_rows(spec, q, rows, /*causal=*/false, 0, {})));
}

}  // namespace tfm::nn
