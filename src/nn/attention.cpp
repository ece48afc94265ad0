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

// A row's ring of keys (infer/kv_cache.h): `sinks` first positions, then a ring of `size`.
struct Ring {
  int64_t size = 0, sinks = 0;
  int64_t stored() const { return sinks + size; }
  int64_t slot(int64_t p) const { return p < sinks ? p : sinks + (p - sinks) % size; }
};

// Where one row's keys are for the kernel: k_len key (value) rows, the row's query t at the index
// query_offset + t, masks applied by index. In `Positions` order key j is at position j. A full ring
// (`RingOrder`) holds its keys in ring order and every one is visible to the row's one query. `Unrolled`
// keys are copies: the ring's first `unrolled_sinks` keys, then positions unrolled_from, unrolled_from + 1,
// ... (the window before the new tokens, then the new tokens).
struct RowKeys {
  enum class Order { Positions, RingOrder, Unrolled };
  const float *keys = nullptr, *values = nullptr;
  const uint8_t* valid = nullptr;
  int64_t k_len = 0, query_offset = 0;
  Order order = Order::Positions;
  Ring ring;
  int64_t past = 0;  // RingOrder: the position of the newest key
  int64_t unrolled_sinks = 0, unrolled_from = 0;
  std::vector<float> keys_copy, values_copy;  // Unrolled

  int64_t position(int64_t j) const {
    switch (order) {
      case Order::Positions:
        return j;
      case Order::RingOrder:  // the position p <= past whose slot is j
        return j < ring.sinks ? j : past - ((past - j) % ring.size + ring.size) % ring.size;
      case Order::Unrolled:
        return j < unrolled_sinks ? j : unrolled_from + (j - unrolled_sinks);
    }
    return j;
  }
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
    const bool ring_order = rk.order == RowKeys::Order::RingOrder;
    mask.causal = causal && !ring_order;
    mask.query_offset = rk.query_offset;
    mask.window = ring_order ? 0 : window;
    mask.global = global;
    kernels::AttentionBias bias;
    std::vector<float> key_positions, scores;
    std::vector<int64_t> buckets;
    if (row_bias.alibi_slopes) {
      key_positions.resize(size_t(d.k_len));
      for (int64_t j = 0; j < d.k_len; ++j) key_positions[size_t(j)] = float(rk.position(j));
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
// cache (in its ring when ring.size > 0).
void store(float* cache, const float* rows, int64_t past, int64_t count, int64_t width, const Ring& ring) {
  if (ring.size == 0) {
    std::copy_n(rows, count * width, cache + past * width);
    return;
  }
  for (int64_t t = 0; t < count; ++t)
    std::copy_n(rows + t * width, width, cache + ring.slot(past + t) * width);
}

// Row r's keys for its new tokens [first, first + count) at positions past, past + 1, ...; stores them.
// Keys in a ring that has wrapped: one new token attends to the whole ring in ring order (the key it
// replaces is out of its window); several new tokens attend to a copy of the sinks and of the window
// before them (the last ring - 1 cached keys, unrolled) followed by the new keys, since storing the new
// keys first could overwrite keys the earlier ones still see.
RowKeys row_keys(const CachedRows& rows, size_t r, const float* k, const float* v, int64_t width,
                 bool relative_bias) {
  const int64_t first = rows.offsets[r], count = rows.offsets[r + 1] - first, past = rows.past[r];
  const Ring ring{rows.ring, rows.sinks};
  const float *new_keys = k + first * width, *new_values = v + first * width;
  RowKeys rk;
  rk.valid = rows.key_valid.empty() ? nullptr : rows.key_valid[r];
  rk.ring = ring, rk.past = past, rk.query_offset = past;
  if (ring.size == 0 || past + count <= ring.stored() || (count == 1 && !relative_bias)) {
    store(rows.keys[r], new_keys, past, count, width, ring);
    store(rows.values[r], new_values, past, count, width, ring);
    rk.keys = rows.keys[r], rk.values = rows.values[r];
    const bool wrapped = ring.size > 0 && past + count > ring.stored();
    rk.order = wrapped ? RowKeys::Order::RingOrder : RowKeys::Order::Positions;
    rk.k_len = wrapped ? ring.stored() : past + count;
    return rk;
  }
  const int64_t sinks = std::min(past, ring.sinks);
  const int64_t kept = past > ring.sinks ? std::min(past - ring.sinks, ring.size - 1) : 0;
  rk.order = RowKeys::Order::Unrolled;
  rk.unrolled_sinks = sinks, rk.unrolled_from = past - kept;
  rk.k_len = sinks + kept + count, rk.query_offset = sinks + kept;
  rk.keys_copy.resize(size_t(rk.k_len * width)), rk.values_copy.resize(size_t(rk.k_len * width));
  for (int64_t j = 0; j < sinks + kept; ++j) {
    const int64_t slot = ring.slot(rk.position(j));
    std::copy_n(rows.keys[r] + slot * width, width, rk.keys_copy.data() + j * width);
    std::copy_n(rows.values[r] + slot * width, width, rk.values_copy.data() + j * width);
  }
  std::copy_n(new_keys, count * width, rk.keys_copy.data() + (sinks + kept) * width);
  std::copy_n(new_values, count * width, rk.values_copy.data() + (sinks + kept) * width);
  store(rows.keys[r], new_keys, past, count, width, ring);
  store(rows.values[r], new_values, past, count, width, ring);
  rk.keys = rk.keys_copy.data(), rk.values = rk.values_copy.data();
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
  TFM_CHECK(
      rows.ring == 0 || (rows.ring == self.window && rows.sinks == self.global && rows.key_valid.empty()),
      "a KV cache ring of {} positions after {} for a window of {} and {} global tokens (padding flags: {})",
      rows.ring, rows.sinks, self.window, self.global, !rows.key_valid.empty());
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
