#include "kernels/cpu/moe.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/scratch.h"

namespace tfm::kernels {

namespace {

constexpr int64_t kParallelMin = 1 << 14;

// p = softmax(z) over n entries (double accumulation).
void softmax_row(const float* z, int64_t n, float* p) {
  float mx = *std::max_element(z, z + n);
  double sum = 0;
  for (int64_t e = 0; e < n; ++e) sum += std::exp(double(z[e] - mx));
  for (int64_t e = 0; e < n; ++e) p[e] = float(std::exp(double(z[e] - mx)) / sum);
}

// The k largest of p[0..n) in decreasing order, ties to the lower index.
void top_k(const float* p, int64_t n, int64_t k, int64_t* chosen) {
  for (int64_t s = 0; s < k; ++s) {
    int64_t best = -1;
    for (int64_t e = 0; e < n; ++e) {
      if (std::find(chosen, chosen + s, e) != chosen + s) continue;
      if (best < 0 || p[e] > p[best]) best = e;
    }
    chosen[s] = best;
  }
}

}  // namespace

void router_top_k_forward(const float* logits, int64_t rows, int64_t experts, int64_t k, int64_t* selected,
                          float* weights) {
#pragma omp parallel for schedule(static) if (rows * experts > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* p = thread_scratch(size_t(experts));
    softmax_row(logits + r * experts, experts, p);
    int64_t* chosen = selected + r * k;
    top_k(p, experts, k, chosen);
    double total = 0;
    for (int64_t s = 0; s < k; ++s) total += p[chosen[s]];
    for (int64_t s = 0; s < k; ++s) weights[r * k + s] = float(p[chosen[s]] / total);
  }
}

void router_top_k_backward(const int64_t* selected, const float* weights, const float* dweights, int64_t rows,
                           int64_t experts, int64_t k, float* dlogits) {
#pragma omp parallel for schedule(static) if (rows * experts > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* w = weights + r * k;
    const float* dw = dweights + r * k;
    double dot = 0;
    for (int64_t s = 0; s < k; ++s) dot += double(w[s]) * dw[s];
    for (int64_t s = 0; s < k; ++s) dlogits[r * experts + selected[r * k + s]] += w[s] * float(dw[s] - dot);
  }
}

void count_expert_choices(const float* logits, const uint8_t* token_valid, int64_t rows, int64_t experts,
                          int64_t k, double* counts) {
  std::vector<float> p(static_cast<size_t>(experts));
  std::vector<int64_t> chosen(static_cast<size_t>(k));
  for (int64_t r = 0; r < rows; ++r) {
    if (token_valid && !token_valid[r]) continue;
    softmax_row(logits + r * experts, experts, p.data());
    top_k(p.data(), experts, k, chosen.data());
    for (int64_t s = 0; s < k; ++s) counts[chosen[s]] += 1;
  }
}

double weighted_router_probs(const float* logits, const uint8_t* token_valid, int64_t rows, int64_t experts,
                             const float* coef) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (rows * experts > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    if (token_valid && !token_valid[r]) continue;
    float* p = thread_scratch(size_t(experts));
    softmax_row(logits + r * experts, experts, p);
    for (int64_t e = 0; e < experts; ++e) total += double(coef[e]) * p[e];
  }
  return total;
}

void weighted_router_probs_backward(const float* logits, const uint8_t* token_valid, int64_t rows,
                                    int64_t experts, const float* coef, float upstream, float* dlogits) {
#pragma omp parallel for schedule(static) if (rows * experts > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    if (token_valid && !token_valid[r]) continue;
    float* p = thread_scratch(size_t(experts));
    softmax_row(logits + r * experts, experts, p);
    double dot = 0;  // softmax backward with d/dp_e = coef[e]: dz_e = p_e (coef_e - sum_f p_f coef_f)
    for (int64_t e = 0; e < experts; ++e) dot += double(p[e]) * coef[e];
    for (int64_t e = 0; e < experts; ++e) dlogits[r * experts + e] += upstream * p[e] * float(coef[e] - dot);
  }
}

void scatter_add_rows_forward(const float* rows, const int64_t* index, const float* weights, int64_t m,
                              int64_t cols, float* out) {
  // Rows may share a target, so threads split the columns, not the rows (race-free, deterministic).
  constexpr int64_t kBand = 64;
  int64_t bands = (cols + kBand - 1) / kBand;
#pragma omp parallel for schedule(static) if (m * cols > kParallelMin)
  for (int64_t b = 0; b < bands; ++b) {
    int64_t c0 = b * kBand, c1 = std::min(cols, c0 + kBand);
    for (int64_t r = 0; r < m; ++r) {
      const float w = weights ? weights[r] : 1.0f;
      const float* src = rows + r * cols;
      float* dst = out + index[r] * cols;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += w * src[c];
    }
  }
}

void scatter_add_rows_backward(const float* rows, const int64_t* index, const float* weights,
                               const float* dout, int64_t m, int64_t cols, float* drows, float* dweights) {
#pragma omp parallel for schedule(static) if (m * cols > kParallelMin)
  for (int64_t r = 0; r < m; ++r) {
    const float* g = dout + index[r] * cols;
    if (drows) {
      const float w = weights ? weights[r] : 1.0f;
      float* dst = drows + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) dst[c] += w * g[c];
    }
    if (dweights) {
      const float* src = rows + r * cols;
      double dot = 0;
      for (int64_t c = 0; c < cols; ++c) dot += double(src[c]) * g[c];
      dweights[r] += float(dot);
    }
  }
}

}  // namespace tfm::kernels
