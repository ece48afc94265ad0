// Mixture-of-experts routing (Mixtral, HF modeling_mixtral.py) and row gather / weighted scatter-add.
//   Router: p = softmax(logits) over all experts; the k most probable experts are chosen (ties: lower
//   index first) and their weights renormalised over the chosen k: w_j = p_j / sum_chosen p. That is a
//   softmax over the chosen logits alone, which gives the backward.
//   Load balancing (HF load_balancing_loss_func, Switch Transformer eqs. 4-6), over the routers of all
//   layers concatenated and only tokens with token_valid = 1:
//     loss = E * sum_e F_e * P_e,  F_e = (times e is among a token's top k) / (layers * valid tokens),
//     P_e = sum of p_e over valid tokens / (layers * valid tokens).
//   F comes from the discrete top-k choice and carries no gradient; P is differentiable.
#pragma once

#include <cstdint>

namespace tfm::kernels {

// selected [rows, k] (int64), weights [rows, k].
void router_top_k_forward(const float* logits, int64_t rows, int64_t experts, int64_t k, int64_t* selected,
                          float* weights);
// dlogits += d/dlogits of the chosen weights given dweights.
void router_top_k_backward(const int64_t* selected, const float* weights, const float* dweights, int64_t rows,
                           int64_t experts, int64_t k, float* dlogits);

// counts[e] += how many valid rows have e among their top k (token_valid may be null: all valid).
void count_expert_choices(const float* logits, const uint8_t* token_valid, int64_t rows, int64_t experts,
                          int64_t k, double* counts);

// sum over valid rows r of sum_e coef[e] * softmax(logits[r])[e], and its gradient (dlogits += upstream *
// d/d).
double weighted_router_probs(const float* logits, const uint8_t* token_valid, int64_t rows, int64_t experts,
                             const float* coef);
void weighted_router_probs_backward(const float* logits, const uint8_t* token_valid, int64_t rows,
                                    int64_t experts, const float* coef, float upstream, float* dlogits);

// out[index[m], :] += w[m] * rows[m, :] (w null: 1). out [n, cols] must hold its initial values.
void scatter_add_rows_forward(const float* rows, const int64_t* index, const float* weights, int64_t m,
                              int64_t cols, float* out);
// drows[m] += w[m] * dout[index[m]], dweights[m] += rows[m] . dout[index[m]] (either may be null).
void scatter_add_rows_backward(const float* rows, const int64_t* index, const float* weights,
                               const float* dout, int64_t m, int64_t cols, float* drows, float* dweights);

}  // namespace tfm::kernels
