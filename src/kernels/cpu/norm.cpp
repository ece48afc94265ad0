#include "kernels/cpu/norm.h"

#include <omp.h>

#include <cmath>

#include "kernels/cpu/scratch.h"

namespace tfm::kernels {

void layer_norm_forward(NormKind kind, const float* x, const float* gamma, const float* beta, float* y,
                        float* mean, float* inv, int64_t rows, int64_t cols, float eps) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    float mu = sum / float(cols);
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < cols; ++c) ss += (xr[c] - mu) * (xr[c] - mu);
    float iv = kind == NormKind::LayerNorm ? 1.0f / std::sqrt(ss / float(cols) + eps)
                                           : 1.0f / (std::sqrt(ss / float(cols - 1)) + eps);
    mean[r] = mu;
    inv[r] = iv;
    float* yr = y + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] = gamma[c] * ((xr[c] - mu) * iv) + beta[c];
  }
}

void layer_norm_backward(NormKind kind, const float* x, const float* gamma, const float* mean,
                         const float* inv, const float* dy, float* dx, float* dgamma, float* dbeta,
                         int64_t rows, int64_t cols, float eps) {
  int threads = omp_get_max_threads();
  bool parallel = rows * cols > (1 << 14);
  int used = parallel ? threads : 1;
  // Per-thread partial sums of dgamma and dbeta, reduced in thread order (deterministic).
  float* partial = thread_scratch(size_t(2 * used * cols));
  for (int64_t i = 0; i < 2 * used * cols; ++i) partial[i] = 0;
#pragma omp parallel num_threads(used) if (parallel)
  {
    int t = omp_get_thread_num();
    float* pg = partial + 2 * t * cols;
    float* pb = pg + cols;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      const float* dyr = dy + r * cols;
      float mu = mean[r], iv = inv[r];
      float sum_g = 0, sum_gx = 0;  // sum of g = dy * gamma, and of g * xhat
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t c = 0; c < cols; ++c) {
        float xhat = (xr[c] - mu) * iv;
        float g = dyr[c] * gamma[c];
        sum_g += g;
        sum_gx += g * xhat;
        pg[c] += dyr[c] * xhat;
        pb[c] += dyr[c];
      }
      if (!dx) continue;
      float* dxr = dx + r * cols;
      float mean_g = sum_g / float(cols);
      // Standard: dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
      // Seed: std s = 1/inv - eps; dx = inv * (g - mean(g)) - xhat * sum(g * xhat) / ((n - 1) s).
      float k;
      if (kind == NormKind::LayerNorm) {
        k = iv * sum_gx / float(cols);
      } else {
        float s = 1.0f / iv - eps;
        k = s > 0 ? sum_gx / (float(cols - 1) * s) : 0.0f;
      }
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        float xhat = (xr[c] - mu) * iv;
        dxr[c] += iv * (dyr[c] * gamma[c] - mean_g) - xhat * k;
      }
    }
  }
  for (int t = 0; t < used; ++t) {
    const float* pg = partial + 2 * t * cols;
    if (dgamma)
      for (int64_t c = 0; c < cols; ++c) dgamma[c] += pg[c];
    if (dbeta)
      for (int64_t c = 0; c < cols; ++c) dbeta[c] += pg[cols + c];
  }
}

}  // namespace tfm::kernels
