#include "nn/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/linear_attention.h"
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
  o.global_tokens = mask.global;
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
  if (spec.linear) return out_proj.forward(c, ag::linear_attention(q, k, v, o));
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

// Where one row's keys are for the kernel: k_len key (value) rows in position order, the row's query t
// at the position of key query_offset + t. A full ring (`ring_order`) is the exception: its keys are in
// ring order and every one is visible to the row's one query.
struct RowKeys {
  const float *keys = nullptr, *values = nullptr;
  const uint8_t* valid = nullptr;
  int64_t k_len = 0, query_offset = 0;
  bool ring_order = false;
  int64_t past = 0, ring = 0;  // ring_order: slot s holds the position p <= past with p % ring == s
  std::vector<float> keys_copy, values_copy;  // the window unrolled from a ring, with the new keys after it
};

// Attention of each row's queries (its slice of q [1, T, heads * head_dim]) to its own keys: one
// kernel call per row, rows in parallel.
Tensor attend_rows(const AttentionSpec& spec, const Tensor& q, std::span<const int64_t> offsets,
                   const std::vector<RowKeys>& keys, bool causal, int64_t window, int64_t global,
                   const RowBias& row_bias) {
  const int64_t n_rows = int64_t(offsets.size()) - 1;
  const int64_t q_width = spec.heads * spec.head_dim, kv_width = spec.kv_heads * spec.head_dim;
  Tensor out = Tensor::empty(q.shape());
  const float scale = spec.scale ? 1.0f / std::sqrt(float(spec.head_dim)) : 1.0f;
  const float* qp = q.f32();
  float* op = out.f32();
  const bool flash = ag::attention_kernel() == ag::AttentionKernel::Flash;
#pragma omp parallel for schedule(dynamic)
  for (int64_t r = 0; r < n_rows; ++r) {
    const RowKeys& rk = keys[size_t(r)];
    const int64_t first = offsets[r], count = offsets[r + 1] - first;
    kernels::AttentionDims d;
    d.batch = 1;
    d.q_len = count;
    d.k_len = rk.k_len;
    d.heads = spec.heads;
    d.kv_heads = spec.kv_heads;
    d.head_dim = spec.head_dim;
    d.q_stride = q_width;
    d.k_stride = d.v_stride = kv_width;
    kernels::AttentionMask mask;
    mask.key_valid = rk.valid;
    mask.causal = causal && !rk.ring_order;
    mask.query_offset = rk.query_offset;
    mask.window = rk.ring_order ? 0 : window;
    mask.global = global;
    kernels::AttentionBias bias;
    std::vector<float> key_positions, scores;
    std::vector<int64_t> buckets;
    if (row_bias.alibi_slopes) {  // a shift of every key's position leaves the softmax as it is
      key_positions.resize(size_t(d.k_len));
      for (int64_t j = 0; j < d.k_len; ++j)
        key_positions[size_t(j)] =
            float(rk.ring_order ? rk.past - ((rk.past - j) % rk.ring + rk.ring) % rk.ring : j);
      bias.alibi_slopes = row_bias.alibi_slopes;
      bias.key_positions = key_positions.data();
    }
    if (row_bias.relative_table) {
      // The full forward's relative_position_bias, for queries at key positions offset, offset + 1, ...
      const Tensor& table = *row_bias.relative_table;
      const int64_t cells = count * d.k_len, heads = table.size(1);
      buckets.resize(size_t(cells));
      kernels::relative_position_buckets(count, d.k_len, rk.query_offset, /*bidirectional=*/false,
                                         table.size(0), row_bias.relative_max_distance, buckets.data());
      scores.resize(size_t(heads * cells));
      kernels::relative_bias_forward(table.f32(), heads, buckets.data(), cells, scores.data());
      bias.scores = scores.data();
    }
    if (spec.linear)
      kernels::linear_attention_forward(d, mask, qp + first * q_width, rk.keys, rk.values,
                                        op + first * q_width);
    else if (flash)
      kernels::flash_attention_forward(d, mask, bias, scale, {}, qp + first * q_width, rk.keys, rk.values,
                                       op + first * q_width, nullptr);
    else
      kernels::attention_forward(d, mask, bias, scale, {}, qp + first * q_width, rk.keys, rk.values,
                                 op + first * q_width, nullptr);
  }
  return out;
}

// Stores `count` new key (value) rows of `width` floats at positions past, past + 1, ... of a row's
// cache (a ring of `ring` positions when ring > 0: only the last `ring` of them survive).
void store(float* cache, const float* rows, int64_t past, int64_t count, int64_t width, int64_t ring) {
  if (ring == 0) {
    std::copy_n(rows, count * width, cache + past * width);
    return;
  }
  for (int64_t t = std::max<int64_t>(0, count - ring); t < count; ++t)
    std::copy_n(rows + t * width, width, cache + ((past + t) % ring) * width);
}

// Row r's keys for its new tokens [first, first + count) at positions past, past + 1, ...; stores them.
// Keys in a ring that has wrapped: one new token attends to the whole ring in ring order (the key it
// replaces is out of its window); several new tokens attend to a copy of the window before them (the
// last ring - 1 cached keys, unrolled) followed by the new keys, since storing the new keys first could
// overwrite keys the earlier ones still see.
RowKeys row_keys(const CachedRows& rows, size_t r, const float* k, const float* v, int64_t width,
                 bool relative_bias) {
  const int64_t first = rows.offsets[r], count = rows.offsets[r + 1] - first, past = rows.past[r];
  const int64_t ring = rows.ring;
  RowKeys rk;
  rk.valid = rows.key_valid.empty() ? nullptr : rows.key_valid[r];
  if (ring == 0 || past + count <= ring || (count == 1 && !relative_bias)) {
    store(rows.keys[r], k + first * width, past, count, width, ring);
    store(rows.values[r], v + first * width, past, count, width, ring);
    rk.keys = rows.keys[r], rk.values = rows.values[r];
    rk.ring_order = ring > 0 && past + count > ring;
    rk.k_len = rk.ring_order ? ring : past + count;
    rk.query_offset = past, rk.past = past, rk.ring = ring;
    return rk;
  }
  const int64_t kept = std::min(past, ring - 1), k_len = kept + count;
  rk.keys_copy.resize(size_t(k_len * width)), rk.values_copy.resize(size_t(k_len * width));
  for (int64_t j = 0; j < kept; ++j) {
    const int64_t slot = (past - kept + j) % ring;
    std::copy_n(rows.keys[r] + slot * width, width, rk.keys_copy.data() + j * width);
    std::copy_n(rows.values[r] + slot * width, width, rk.values_copy.data() + j * width);
  }
  std::copy_n(k + first * width, count * width, rk.keys_copy.data() + kept * width);
  std::copy_n(v + first * width, count * width, rk.values_copy.data() + kept * width);
  store(rows.keys[r], k + first * width, past, count, width, ring);
  store(rows.values[r], v + first * width, past, count, width, ring);
  rk.keys = rk.keys_copy.data(), rk.values = rk.values_copy.data();
  rk.k_len = k_len, rk.query_offset = kept;
  return rk;
}

// Linear attention over each row's running sums (CachedRows::state): the new tokens are added to them in
// order and read them back (kernels/cpu/linear_attention.h); a row's first tokens start from zeros.
Tensor attend_state(const AttentionSpec& spec, const Tensor& q, const Tensor& k, const Tensor& v,
                    const CachedRows& rows) {
  TFM_CHECK(spec.linear && rows.key_valid.empty(),
            "running sums need linear attention without padding flags");
  const int64_t n_rows = int64_t(rows.offsets.size()) - 1;
  const int64_t q_width = spec.heads * spec.head_dim, kv_width = spec.kv_heads * spec.head_dim;
  Tensor out = Tensor::empty(q.shape());
#pragma omp parallel for schedule(dynamic)
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t first = rows.offsets[r];
    if (rows.past[r] == 0) {
      std::fill_n(rows.keys[r], spec.head_dim * kv_width, 0.0f);
      std::fill_n(rows.values[r], kv_width, 0.0f);
    }
    kernels::AttentionDims d;
    d.batch = 1;
    d.q_len = rows.offsets[r + 1] - first;
    d.heads = spec.heads;
    d.kv_heads = spec.kv_heads;
    d.head_dim = spec.head_dim;
    d.q_stride = q_width;
    d.k_stride = d.v_stride = kv_width;
    kernels::linear_attention_recurrent(d, q.f32() + first * q_width, k.f32() + first * kv_width,
                                        v.f32() + first * kv_width, rows.keys[r], rows.values[r],
                                        out.f32() + first * q_width);
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
  TFM_CHECK(rows.ring == 0 || (rows.ring == self.window && self.global == 0 && rows.key_valid.empty()),
            "a KV cache ring of {} positions for a window of {} ({} global tokens, padding flags: {})",
            rows.ring, self.window, self.global, !rows.key_valid.empty());
  const Tensor k = k_var.value();
  const Tensor v = v_proj.forward(c, x).value();
  const int64_t width = spec.kv_heads * spec.head_dim;
  if (rows.state) return out_proj.forward(c, c.tape.leaf(attend_state(spec, q_var.value(), k, v, rows)));
  std::vector<RowKeys> keys;
  for (size_t r = 0; r + 1 < rows.offsets.size(); ++r)
    keys.push_back(row_keys(rows, r, k.f32(), v.f32(), width, row_bias.relative_table != nullptr));
  return out_proj.forward(c, c.tape.leaf(attend_rows(spec, q_var.value(), rows.offsets, keys, /*causal=*/true,
                                                     self.window, self.global, row_bias)));
}

ag::Var MultiHeadAttention::forward_cross_cached(Context& c, ag::Var x, const CachedRows& rows) const {
  const Tensor q = q_proj.forward(c, x).value();
  std::vector<RowKeys> keys(rows.offsets.size() - 1);
  for (size_t r = 0; r < keys.size(); ++r) {
    keys[r].keys = rows.keys[r], keys[r].values = rows.values[r], keys[r].k_len = rows.key_len[r];
    keys[r].valid = rows.key_valid.empty() ? nullptr : rows.key_valid[r];
  }
  return out_proj.forward(c,
                          c.tape.leaf(attend_rows(spec, q, rows.offsets, keys, /*causal=*/false, 0, 0, {})));
}

}  // namespace tfm::nn
