#include "kernels/cpu/flash_attention.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <span>

#include "kernels/cpu/attention_layout.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_invariant.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/vector_math.h"

namespace tfm::kernels {

namespace {

using namespace detail;

constexpr int64_t kQT = kFlashQueryTile, kKT = kFlashKeyTile;

// The forward tile products of a few queries (decoding feeds one new token per row) run in the
// row-invariant kernels, which take no per-call setup: for a 1 x 128 x 64 product, calling oneDNN's sgemm
// costs more than the product. A tile's kernel depends only on its own query count, so a row's result
// still depends only on that row.
constexpr int64_t kFewQueries = 4;

void tile_product(int64_t rows, bool trans_b, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  (rows <= kFewQueries ? gemm_row_invariant : gemm)(false, trans_b, rows, N, K, alpha, A, lda, B, ldb, beta,
                                                    C, ldc);
}

// For each batch row, next_valid[j] = the first key >= j that the padding mask leaves (k_len if none):
// answers "does query i see any key?" in O(1). In the calling thread's scratch (slot 2; gemm() uses 0 and
// 1), so a steady-state step allocates nothing; empty without a padding mask.
std::span<const int32_t> next_valid_keys(const AttentionDims& d, const AttentionMask& mask) {
  if (!mask.key_valid) return {};
  const size_t n = size_t(d.batch * (d.k_len + 1));
  auto* next = static_cast<int32_t*>(thread_scratch_bytes(n * sizeof(int32_t), 2));
  for (int64_t b = 0; b < d.batch; ++b) {
    int32_t* nv = next + b * (d.k_len + 1);
    nv[d.k_len] = int32_t(d.k_len);
    for (int64_t j = d.k_len - 1; j >= 0; --j)
      nv[j] = mask.key_valid[b * d.k_len + j] ? int32_t(j) : nv[j + 1];
  }
  return {next, n};
}

// The queries of one tile: each row's visible keys (clipped to the keys) and whether it sees no key at
// all (then, as in the dense kernel where every score is the same constant, its softmax is uniform over all
// k_len keys: its scores are taken as 0 everywhere). The tile walks the key tiles of [0, sink_hi] (global
// keys some row sees) and of [lo, hi] (the other keys any row needs), skipping all others.
struct QueryTile {
  int64_t b, h, i0, rows;
  std::array<KeyRange, kQT> keys;
  std::array<bool, kQT> empty;
  int64_t sink_hi, lo, hi;
};

QueryTile plan_tile(const AttentionDims& d, const AttentionMask& mask, std::span<const int32_t> next,
                    int64_t b, int64_t h, int64_t i0) {
  QueryTile t{b, h, i0, std::min(kQT, d.q_len - i0), {}, {}, -1, d.k_len, -1};
  const int32_t* nv = next.empty() ? nullptr : next.data() + b * (d.k_len + 1);
  bool any_empty = false;
  for (int64_t r = 0; r < t.rows; ++r) {
    KeyRange kr = visible_keys(mask, i0 + r, d.k_len);
    kr.first = std::max<int64_t>(kr.first, 0), kr.last = std::min(kr.last, d.k_len - 1);
    if (nv && kr.first <= kr.last) kr.first = nv[kr.first];  // skip leading padding
    const bool sinks_seen = kr.sinks > 0 && (!nv || nv[0] < kr.sinks);
    t.keys[size_t(r)] = kr;
    t.empty[size_t(r)] = kr.first > kr.last && !sinks_seen;
    any_empty |= t.empty[size_t(r)];
    if (kr.first <= kr.last) t.lo = std::min(t.lo, kr.first), t.hi = std::max(t.hi, kr.last);
    t.sink_hi = std::max(t.sink_hi, kr.sinks - 1);
  }
  if (any_empty) t.lo = 0, t.hi = d.k_len - 1;
  if (t.sink_hi + 1 >= t.lo) t.lo = 0, t.hi = std::max(t.hi, t.sink_hi), t.sink_hi = -1;  // one span
  return t;
}

// Calls f(j0, nk) for each key tile the query tile needs: [0, sink_hi], then [lo, hi].
template <class F>
void for_each_key_tile(const QueryTile& t, F f) {
  for (int64_t j0 = 0; j0 <= t.sink_hi; j0 += kKT) f(j0, std::min(kKT, t.sink_hi + 1 - j0));
  for (int64_t j0 = t.lo; j0 <= t.hi; j0 += kKT) f(j0, std::min(kKT, t.hi + 1 - j0));
}

struct Inputs {
  const AttentionDims& d;
  const AttentionMask& mask;
  const AttentionBias& bias;
  float scale;
  const DropoutSpec& drop;
  const float *q, *k, *v;
};

// s[r, c] = S of query i0 + r and key j0 + c (ld kKT): scale q.k + bias, -inf where masked, 0 in rows that
// see no key.
void score_tile(const Inputs& in, const QueryTile& t, int64_t j0, int64_t nk, float* s) {
  const AttentionDims& d = in.d;
  HeadOffsets o = head_offsets(d, t.b, t.h);
  tile_product(t.rows, true, nk, d.head_dim, in.scale, in.q + o.q + t.i0 * d.q_stride, d.q_stride,
               in.k + o.k + j0 * d.k_stride, d.k_stride, 0.0f, s, kKT);
  const float* bias_block =
      in.bias.scores ? in.bias.scores + ((in.bias.per_batch ? t.b * d.heads : 0) + t.h) * d.q_len * d.k_len
                     : nullptr;
  const uint8_t* valid = in.mask.key_valid ? in.mask.key_valid + t.b * d.k_len + j0 : nullptr;
  for (int64_t r = 0; r < t.rows; ++r) {
    float* row = s + r * kKT;
    if (t.empty[size_t(r)]) {
      std::fill_n(row, nk, 0.0f);
      continue;
    }
    if (bias_block) {
      const float* src = bias_block + (t.i0 + r) * d.k_len + j0;
#pragma omp simd
      for (int64_t c = 0; c < nk; ++c) row[c] += src[c];
    }
    if (in.bias.alibi_slopes) {
      const float slope = in.bias.alibi_slopes[t.h];
      const float* pos = in.bias.key_positions + t.b * d.k_len + j0;
#pragma omp simd
      for (int64_t c = 0; c < nk; ++c) row[c] += slope * pos[c];
    }
    const KeyRange& kr = t.keys[size_t(r)];
    for (int64_t c = 0; c < nk; ++c)
      if (!kr.visible(j0 + c) || (valid && !valid[c])) row[c] = -INFINITY;
  }
}

// Dropout on a tile of scores (i0 + r, j0 + c), from src into dst (may be the same): the dense kernel's
// decisions for the same scores.
void dropout_tile(const Inputs& in, const QueryTile& t, int64_t j0, int64_t nk, const float* src,
                  float* dst) {
  const uint64_t base = head_stream(in.d, in.drop, t.b, t.h);
  for (int64_t r = 0; r < t.rows; ++r)
    apply_dropout(in.drop, base + uint64_t((t.i0 + r) * in.d.k_len + j0), src + r * kKT, dst + r * kKT, nk);
}

void forward_tile(const Inputs& in, const QueryTile& t, float* out, float* lse) {
  const AttentionDims& d = in.d;
  HeadOffsets o = head_offsets(d, t.b, t.h);
  float* o_tile = out + o.q + t.i0 * d.q_stride;
  std::array<float, kQT> m, l;
  m.fill(-INFINITY);
  l.fill(0.0f);
  for (int64_t r = 0; r < t.rows; ++r) std::fill_n(o_tile + r * d.q_stride, d.head_dim, 0.0f);
  float* s = thread_scratch(size_t(kQT * kKT), 0);
  for_each_key_tile(t, [&](int64_t j0, int64_t nk) {
    score_tile(in, t, j0, nk, s);
    for (int64_t r = 0; r < t.rows; ++r) {
      float* row = s + r * kKT;
      float mx = m[size_t(r)];
      for (int64_t c = 0; c < nk; ++c) mx = std::max(mx, row[c]);
      if (mx == -INFINITY) {  // nothing visible yet in this row: P~ = 0
        std::fill_n(row, nk, 0.0f);
        continue;
      }
      const float sum = exp_shifted(row, mx, row, nk);
      const float correction = std::exp(m[size_t(r)] - mx);  // 0 when m was -inf
      if (correction != 1.0f) {
        float* orow = o_tile + r * d.q_stride;
#pragma omp simd
        for (int64_t e = 0; e < d.head_dim; ++e) orow[e] *= correction;
      }
      l[size_t(r)] = l[size_t(r)] * correction + sum;
      m[size_t(r)] = mx;
    }
    if (in.drop.p > 0) dropout_tile(in, t, j0, nk, s, s);  // l sums the undropped P~, as softmax does
    tile_product(t.rows, false, d.head_dim, nk, 1.0f, s, kKT, in.v + o.v + j0 * d.v_stride, d.v_stride, 1.0f,
                 o_tile, d.q_stride);
  });
  for (int64_t r = 0; r < t.rows; ++r) {
    const float inv = 1.0f / l[size_t(r)];
    float* orow = o_tile + r * d.q_stride;
#pragma omp simd
    for (int64_t e = 0; e < d.head_dim; ++e) orow[e] *= inv;
    if (lse) lse[(t.b * d.heads + t.h) * d.q_len + t.i0 + r] = m[size_t(r)] + std::log(l[size_t(r)]);
  }
}

struct Grads {
  const float *out, *lse, *dout;
  float *dq, *dk, *dv, *dscores;
};

void backward_tile(const Inputs& in, const QueryTile& t, const Grads& g) {
  const AttentionDims& d = in.d;
  HeadOffsets o = head_offsets(d, t.b, t.h);
  const int64_t row0 = (t.b * d.heads + t.h) * d.q_len + t.i0;
  const float* do_tile = g.dout + o.q + t.i0 * d.q_stride;
  const float* q_tile = in.q + o.q + t.i0 * d.q_stride;
  std::array<float, kQT> D;
  for (int64_t r = 0; r < t.rows; ++r) {
    const float *a = do_tile + r * d.q_stride, *b = g.out + o.q + (t.i0 + r) * d.q_stride;
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t e = 0; e < d.head_dim; ++e) dot += a[e] * b[e];
    D[size_t(r)] = dot;
  }
  const bool need_ds = g.dq || g.dk || g.dscores;
  float* p = thread_scratch(size_t(kQT * kKT), 0);
  float* pd = thread_scratch(size_t(kQT * kKT), 1);
  float* ds = thread_scratch(size_t(kQT * kKT), 2);
  for_each_key_tile(t, [&](int64_t j0, int64_t nk) {
    score_tile(in, t, j0, nk, p);
    for (int64_t r = 0; r < t.rows; ++r) {
      float* row = p + r * kKT;
      exp_shifted(row, g.lse[row0 + r], row, nk);
    }
    const float* pv = p;  // P', the probabilities that multiplied V
    if (in.drop.p > 0) {
      dropout_tile(in, t, j0, nk, p, pd);
      pv = pd;
    }
    if (g.dv)  // dV += P'^T dO
      gemm(true, false, nk, d.head_dim, t.rows, 1.0f, pv, kKT, do_tile, d.q_stride, 1.0f,
           g.dv + o.v + j0 * d.v_stride, d.v_stride);
    if (!need_ds) return;
    gemm(false, true, t.rows, nk, d.head_dim, 1.0f, do_tile, d.q_stride, in.v + o.v + j0 * d.v_stride,
         d.v_stride, 0.0f, ds, kKT);  // dP' = dO V^T
    if (in.drop.p > 0) dropout_tile(in, t, j0, nk, ds, ds);
    for (int64_t r = 0; r < t.rows; ++r) {
      float* drow = ds + r * kKT;
      const float* prow = p + r * kKT;
      if (t.empty[size_t(r)] && !in.mask.additive) {  // constant scores: no gradient
        std::fill_n(drow, nk, 0.0f);
        continue;
      }
      const float Dr = D[size_t(r)];
#pragma omp simd
      for (int64_t c = 0; c < nk; ++c) drow[c] = prow[c] * (drow[c] - Dr);  // P = 0 where masked
    }
    if (g.dscores)
      for (int64_t r = 0; r < t.rows; ++r)
        std::copy_n(ds + r * kKT, nk, g.dscores + (row0 + r) * d.k_len + j0);
    if (g.dq)  // dQ += scale dS K
      gemm(false, false, t.rows, d.head_dim, nk, in.scale, ds, kKT, in.k + o.k + j0 * d.k_stride, d.k_stride,
           1.0f, g.dq + o.q + t.i0 * d.q_stride, d.q_stride);
    if (g.dk)  // dK += scale dS^T Q
      gemm(true, false, nk, d.head_dim, t.rows, in.scale, ds, kKT, q_tile, d.q_stride, 1.0f,
           g.dk + o.k + j0 * d.k_stride, d.k_stride);
  });
}

// Every thread of the team takes its tile buffers (slots 0 .. slots - 1) now, whether or not the dynamic
// schedule gives it a tile this time: a thread first handed work in a later call would allocate then, in
// what should be an allocation-free steady state.
void reserve_tile_scratch(int slots) {
  for (int slot = 0; slot < slots; ++slot) thread_scratch(size_t(kQT * kKT), slot);
}

int64_t query_tiles(const AttentionDims& d) { return (d.q_len + kQT - 1) / kQT; }

}  // namespace

void flash_attention_forward(const AttentionDims& d, const AttentionMask& mask, const AttentionBias& bias,
                             float scale, const DropoutSpec& drop, const float* q, const float* k,
                             const float* v, float* out, float* lse) {
  const std::span<const int32_t> next = next_valid_keys(d, mask);
  const Inputs in{d, mask, bias, scale, drop, q, k, v};
  const int64_t tiles = query_tiles(d);
#pragma omp parallel
  {
    reserve_tile_scratch(1);
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t h = 0; h < d.heads; ++h)
        for (int64_t it = 0; it < tiles; ++it)
          forward_tile(in, plan_tile(d, mask, next, b, h, it * kQT), out, lse);
  }
}

void flash_attention_backward(const AttentionDims& d, const AttentionMask& mask, const AttentionBias& bias,
                              float scale, const DropoutSpec& drop, const float* q, const float* k,
                              const float* v, const float* out, const float* lse, const float* dout,
                              float* dq, float* dk, float* dv, float* dscores) {
  const std::span<const int32_t> next = next_valid_keys(d, mask);
  const Inputs in{d, mask, bias, scale, drop, q, k, v};
  const Grads g{out, lse, dout, dq, dk, dv, dscores};
  if (dscores) std::memset(dscores, 0, sizeof(float) * size_t(d.batch * d.heads * d.q_len * d.k_len));
  const int64_t kv_heads = kv_heads_of(d), group = d.heads / kv_heads, tiles = query_tiles(d);
  // One task per (batch, K/V head): the query tiles and heads that share it run in turn inside it, so their
  // dK and dV contributions add up without races.
#pragma omp parallel
  {
    reserve_tile_scratch(3);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t kvh = 0; kvh < kv_heads; ++kvh)
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
          for (int64_t it = 0; it < tiles; ++it)
            backward_tile(in, plan_tile(d, mask, next, b, h, it * kQT), g);
  }
}

}  // namespace tfm::kernels
