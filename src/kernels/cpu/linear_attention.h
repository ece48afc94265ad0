// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs: Fast Autoregressive Transformers
// with Linear Attention", eqs. 4-9): the softmax kernel exp(q.k) is replaced by phi(q).phi(k) with the
// feature map phi(x) = elu(x) + 1 (positive), so each query's output
//   out_i = phi(q_i)^T S_i / (phi(q_i) . z_i),  S_i = sum_{j visible} phi(k_j) v_j^T,  z_i = sum_{j visible}
//   phi(k_j)
// needs only the running sums S (head_dim x head_dim) and z: O(n d^2) time and O(d^2) state instead of
// the O(n^2) score matrix. Causal: key j is visible to query i when j <= i + query_offset (S and z grow
// as the queries advance); otherwise every key is. Padding keys (key_valid 0) are left out of both sums.
// Same [batch, time, heads * head_dim] layout and grouped-query heads as attention.h; there is no score
// scale, no bias and no dropout (no probabilities exist). A query that sees no key gets 0.
//
// Backward, with num_i = S_i^T phi(q_i), den_i = phi(q_i) . z_i, g_i = dL/dout_i:
//   dnum_i = g_i / den_i,  dden_i = -(g_i . out_i) / den_i,
//   d phi(q_i) = S_i dnum_i + z_i dden_i,
//   d phi(k_j) = R_j v_j + r_j,  dv_j = R_j^T phi(k_j),  R_j = sum_{i sees j} phi(q_i) dnum_i^T,
//                r_j = sum_{i sees j} phi(q_i) dden_i,
// a forward sweep for the queries and a backward sweep (R and r running over the queries from the last)
// for the keys; phi'(x) = 1 for x > 0, exp(x) otherwise.
#pragma once

#include "kernels/cpu/attention.h"

namespace tfm::kernels {

// mask: key_valid, causal and query_offset are used; a window or global tokens are errors.
void linear_attention_forward(const AttentionDims& d, const AttentionMask& mask, const float* q,
                              const float* k, const float* v, float* out);

// The recurrent form for decoding (the paper's section 3.4, a transformer as an RNN): one sequence's sums
// S in `state` (head_dim rows of kv_heads * head_dim floats: row a holds S_g[a, :] of every K/V head g side
// by side) and z (kv_heads * head_dim floats: z_g side by side), zeros before the first token. The d.q_len
// new tokens (d.batch 1, causal) are added in order, each query reading the sums after its own key: the
// outputs linear_attention_forward gives for them over the whole sequence, at O(head_dim^2) per token.
void linear_attention_recurrent(const AttentionDims& d, const float* q, const float* k, const float* v,
                                float* state, float* z, float* out);

// Accumulates into dq, dk, dv (each may be null).
void linear_attention_backward(const AttentionDims& d, const AttentionMask& mask, const float* q,
                               const float* k, const float* v, const float* dout, float* dq, float* dk,
                               float* dv);

}  // namespace tfm::kernels
