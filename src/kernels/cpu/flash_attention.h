// The attention of attention.h (same dims, masks, bias, dropout stream, results), computed the
// FlashAttention way (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact Attention with
// IO-Awareness", Algorithms 1 and 2) for CPU caches: queries in tiles of kFlashQueryTile rows walk the
// keys in tiles of kFlashKeyTile, keeping per row the running maximum m and sum l of the online softmax:
//   m' = max(m, max_j S_ij),  l' = l exp(m - m') + sum_j exp(S_ij - m'),  O' = O exp(m - m') + P~ V,
// and O = O' / l at the end. No [q_len, k_len] matrix exists; per row only L = m + log(l) (the
// log-sum-exp) is kept for backward, which recomputes each tile's P = exp(S - L) and uses
// D_i = sum_d dO_id O_id = sum_j P_ij dP_ij:
//   dV += P'^T dO,  dP = dO V^T (times keep / (1 - p) under dropout),  dS = P (dP - D),
//   dQ += scale dS K,  dK += scale dS^T Q.
// Key tiles that causality, the window (outside the global keys) or trailing/leading padding hide from a
// whole query tile are skipped, so causal attention costs about half of the dense kernel's products. Memory:
// a few tiles per thread plus L, linear in the sequence length.
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"

namespace tfm::kernels {

inline constexpr int64_t kFlashQueryTile = 64;
inline constexpr int64_t kFlashKeyTile = 128;

// lse (optional, [batch, heads, q_len]) receives each row's log-sum-exp L, which backward needs.
void flash_attention_forward(const AttentionDims& d, const AttentionMask& mask, const AttentionBias& bias,
                             float scale, const DropoutSpec& drop, const float* q, const float* k,
                             const float* v, float* out, float* lse);

// out and lse are the forward's results. Accumulates into dq, dk, dv (each may be null); dscores as
// attention_backward (overwritten with d loss / d S, [batch, heads, q_len, k_len]).
void flash_attention_backward(const AttentionDims& d, const AttentionMask& mask, const AttentionBias& bias,
                              float scale, const DropoutSpec& drop, const float* q, const float* k,
                              const float* v, const float* out, const float* lse, const float* dout,
                              float* dq, float* dk, float* dv, float* dscores);

}  // namespace tfm::kernels
