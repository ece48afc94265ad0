// Index arithmetic shared by the attention kernels (attention.cpp, flash_attention.cpp): where a head's
// rows live in the strided Q/K/V buffers, which keys a query may see, and where a head's dropout stream
// starts. Both kernels use the same functions, so they mask and drop exactly the same elements.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/random.h"
#include "kernels/cpu/attention.h"

namespace tfm::kernels::detail {

inline int64_t kv_heads_of(const AttentionDims& d) { return d.kv_heads ? d.kv_heads : d.heads; }

struct HeadOffsets {
  int64_t q, k, v;  // element offsets of query head (b, h) in q/out, and of its K/V head in k, v
};

inline HeadOffsets head_offsets(const AttentionDims& d, int64_t b, int64_t h) {
  int64_t qb = d.q_batch_stride ? d.q_batch_stride : d.q_len * d.q_stride;
  int64_t kb = d.k_batch_stride ? d.k_batch_stride : d.k_len * d.k_stride;
  int64_t vb = d.v_batch_stride ? d.v_batch_stride : d.k_len * d.v_stride;
  int64_t g = h / (d.heads / kv_heads_of(d));
  return {b * qb + h * d.head_dim, b * kb + g * d.head_dim, b * vb + g * d.head_dim};
}

// The keys that causality, the window and the global tokens leave visible to query i (before the
// padding mask): [first, last] (first may be negative and last may pass k_len - 1) and, with global
// tokens, also keys [0, sinks). A global query (position < mask.global) sees every key causality allows;
// every query sees the global keys causality allows. When the two ranges touch, first is 0 and sinks 0.
struct KeyRange {
  int64_t first, last, sinks = 0;
  bool visible(int64_t j) const { return (j >= first && j <= last) || j < sinks; }
};
inline KeyRange visible_keys(const AttentionMask& mask, int64_t i, int64_t k_len) {
  const int64_t pos = i + mask.query_offset;
  KeyRange r{mask.window > 0 ? pos - mask.window + 1 : 0, mask.causal ? pos : k_len - 1};
  if (mask.global > 0) {
    if (pos < mask.global) r.first = 0;
    r.sinks = std::min({mask.global, r.last + 1, k_len});
    if (r.sinks >= r.first) r.first = std::min<int64_t>(r.first, 0), r.sinks = 0;
  }
  return r;
}

// Dropout stream position of score [b, h, 0, 0]; score [i, j] of the head is i * k_len + j after it.
inline uint64_t head_stream(const AttentionDims& d, const DropoutSpec& drop, int64_t b, int64_t h) {
  return drop.offset + uint64_t((b * d.heads + h) * d.q_len * d.k_len);
}

// dst[i] = keep(base + i) ? src[i] / (1 - p) : 0 for n consecutive stream positions (in place when src ==
// dst). The keep decisions are a pure function of the stream position, so backward regenerates exactly
// forward's mask, and either kernel drops the same scores.
inline void apply_dropout(const DropoutSpec& drop, uint64_t base, const float* src, float* dst, int64_t n) {
  const float keep_scale = 1.0f / (1.0f - drop.p);
  const uint64_t threshold = keep_threshold(drop.p);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    dst[i] = kept_at(drop.seed, base + uint64_t(i), threshold) ? src[i] * keep_scale : 0.0f;
}

}  // namespace tfm::kernels::detail
