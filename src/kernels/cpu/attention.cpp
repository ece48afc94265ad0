#include "kernels/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_layout.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/vector_math.h"

namespace tfm::kernels {

namespace {

using namespace detail;

constexpr float kMaskedScore = -1e9f;

// Adds the bias of head (b, h) to its [q_len, k_len] score block.
void add_bias(const AttentionDims& d, const AttentionBias& bias, int64_t b, int64_t h, float* s) {
  const int64_t block = d.q_len * d.k_len;
  if (bias.scores) {
    const float* src = bias.scores + ((bias.per_batch ? b * d.heads : 0) + h) * block;
#pragma omp simd
    for (int64_t i = 0; i < block; ++i) s[i] += src[i];
  }
  if (bias.alibi_slopes) {
    const float slope = bias.alibi_slopes[h];
    const float* pos = bias.key_positions + b * d.k_len;
    for (int64_t i = 0; i < d.q_len; ++i) {
      float* row = s + i * d.k_len;
#pragma omp simd
      for (int64_t j = 0; j < d.k_len; ++j) row[j] += slope * pos[j];
    }
  }
}

// Masks and softmaxes one head's [q_len, k_len] score block in place.
void masked_softmax(const AttentionDims& d, const AttentionMask& mask, int64_t b, float* s) {
  const uint8_t* valid = mask.key_valid ? mask.key_valid + b * d.k_len : nullptr;
  for (int64_t i = 0; i < d.q_len; ++i) {
    float* row = s + i * d.k_len;
    KeyRange r = visible_keys(mask, i, d.k_len);
    float mx = -INFINITY;
    for (int64_t j = 0; j < d.k_len; ++j) {
      if (!r.visible(j) || (valid && !valid[j])) row[j] = kMaskedScore;
      mx = std::max(mx, row[j]);
    }
    const float sum = exp_shifted(row, mx, row, d.k_len);
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < d.k_len; ++j) row[j] *= inv;
  }
}

}  // namespace

void attention_forward(const AttentionDims& d, const AttentionMask& mask, const AttentionBias& bias,
                       float scale, const DropoutSpec& drop, const float* q, const float* k, const float* v,
                       float* out, float* probs) {
  const int64_t block = d.q_len * d.k_len;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.heads; ++h) {
      HeadOffsets o = head_offsets(d, b, h);
      float* p = probs ? probs + (b * d.heads + h) * block : thread_scratch(size_t(block), 0);
      gemm(false, true, d.q_len, d.k_len, d.head_dim, scale, q + o.q, d.q_stride, k + o.k, d.k_stride, 0.0f,
           p, d.k_len);
      add_bias(d, bias, b, h, p);
      masked_softmax(d, mask, b, p);
      const float* pv = p;
      if (drop.p > 0) {  // P' = dropout(P) in scratch; P itself is kept for backward
        float* pd = thread_scratch(size_t(block), 1);
        apply_dropout(drop, head_stream(d, drop, b, h), p, pd, block);
        pv = pd;
      }
      gemm(false, false, d.q_len, d.head_dim, d.k_len, 1.0f, pv, d.k_len, v + o.v, d.v_stride, 0.0f,
           out + o.q, d.q_stride);
    }
  }
}

void attention_backward(const AttentionDims& d, const AttentionMask& mask, float scale,
                        const DropoutSpec& drop, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv,
                        float* dscores) {
  const int64_t block = d.q_len * d.k_len;
  const int64_t kv_heads = kv_heads_of(d), group = d.heads / kv_heads;
  // One task per (batch, K/V head): the query heads sharing that K/V head run in turn inside it, so their
  // dK and dV contributions add up without races.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t g = 0; g < kv_heads; ++g) {
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        HeadOffsets o = head_offsets(d, b, h);
        const float* p = probs + (b * d.heads + h) * block;
        uint64_t base = head_stream(d, drop, b, h);
        if (dv) {  // dV += P'^T dO
          const float* pv = p;
          if (drop.p > 0) {
            float* pd = thread_scratch(size_t(block), 1);
            apply_dropout(drop, base, p, pd, block);
            pv = pd;
          }
          gemm(true, false, d.k_len, d.head_dim, d.q_len, 1.0f, pv, d.k_len, dout + o.q, d.q_stride, 1.0f,
               dv + o.v, d.v_stride);
        }
        if (!dq && !dk && !dscores) continue;
        // dP' = dO V^T; dP = dP' * keep / (1 - p)
        float* ds = dscores ? dscores + (b * d.heads + h) * block : thread_scratch(size_t(block), 0);
        gemm(false, true, d.q_len, d.k_len, d.head_dim, 1.0f, dout + o.q, d.q_stride, v + o.v, d.v_stride,
             0.0f, ds, d.k_len);
        if (drop.p > 0) apply_dropout(drop, base, ds, ds, block);
        // Softmax backward: dS = P * (dP - sum_j(dP * P)).
        const uint8_t* valid = mask.key_valid ? mask.key_valid + b * d.k_len : nullptr;
        for (int64_t i = 0; i < d.q_len; ++i) {
          const float* pr = p + i * d.k_len;
          float* dr = ds + i * d.k_len;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < d.k_len; ++j) dot += pr[j] * dr[j];
#pragma omp simd
          for (int64_t j = 0; j < d.k_len; ++j) dr[j] = pr[j] * (dr[j] - dot);
          if (mask.additive) continue;  // P is 0 where masked, unless the whole row is (uniform P)
          KeyRange r = visible_keys(mask, i, d.k_len);
          for (int64_t j = 0; j < d.k_len; ++j)
            if (!r.visible(j) || (valid && !valid[j])) dr[j] = 0.0f;
        }
        if (dq)  // dQ += scale dS K
          gemm(false, false, d.q_len, d.head_dim, d.k_len, scale, ds, d.k_len, k + o.k, d.k_stride, 1.0f,
               dq + o.q, d.q_stride);
        if (dk)  // dK += scale dS^T Q
          gemm(true, false, d.k_len, d.head_dim, d.q_len, scale, ds, d.k_len, q + o.q, d.q_stride, 1.0f,
               dk + o.k, d.k_stride);
      }
    }
  }
}

}  // namespace tfm::kernels
