#include "kernels/cpu/rms_norm.h"

#include <omp.h>

#include <cmath>

#include "kernels/cpu/scratch.h"

namespace tfm::kernels {

namespace {
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

void rms_norm_forward(const float* x, const float* gamma, float* y, float* inv, int64_t rows, int64_t cols,
                      float eps) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < cols; ++c) ss += double(xr[c]) * xr[c];
    float iv = float(1.0 / std::sqrt(ss / double(cols) + double(eps)));
    inv[r] = iv;
    float* yr = y + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] = gamma[c] * (xr[c] * iv);
  }
}

void rms_norm_backward(const float* x, const float* gamma, const float* inv, const float* dy, float* dx,
                       float* dgamma, int64_t rows, int64_t cols) {
  bool parallel = rows * cols > kParallelMin;
  int used = parallel ? omp_get_max_threads() : 1;
  // Per-thread partial sums of dgamma, reduced in thread order (deterministic).
  float* partial = thread_scratch(size_t(used * cols));
  for (int64_t i = 0; i < used * cols; ++i) partial[i] = 0;
#pragma omp parallel num_threads(used) if (parallel)
  {
    float* pg = partial + omp_get_thread_num() * cols;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * cols;
      const float* dyr = dy + r * cols;
      const float iv = inv[r];
      double sum_gx = 0;
#pragma omp simd reduction(+ : sum_gx)
      for (int64_t c = 0; c < cols; ++c) {
        sum_gx += double(dyr[c] * gamma[c]) * xr[c];
        pg[c] += dyr[c] * xr[c] * iv;
      }
      if (!dx) continue;
      float* dxr = dx + r * cols;
      const float k = float(sum_gx / double(cols)) * iv * iv;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) dxr[c] += iv * (dyr[c] * gamma[c] - xr[c] * k);
    }
  }
  if (dgamma)
    for (int t = 0; t < used; ++t)
      for (int64_t c = 0; c < cols; ++c) dgamma[c] += partial[t * cols + c];
}

}  // namespace tfm::kernels
