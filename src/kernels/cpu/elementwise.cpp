#include "kernels/cpu/elementwise.h"

#include <omp.h>

#include <algorithm>

#include "core/random.h"

namespace tfm::kernels {

namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

void add(const float* a, const float* b, float* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void accumulate(float* acc, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

void accumulate_scaled(float* acc, const float* x, float s, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) acc[i] += s * x[i];
}

void scale(const float* x, float s, float* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}

void add_rows_periodic(const float* x, const float* table, float* out, int64_t rows, int64_t cols,
                       int64_t period) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* t = table + (r % period) * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = x[r * cols + c] + t[c];
  }
}

void bias_add(float* y, const float* bias, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += bias[c];
  }
}

void bias_grad(const float* dy, float* dbias, int64_t rows, int64_t cols) {
  // Each thread owns a band of columns and sums all rows in order: deterministic, no partials.
  constexpr int64_t kBand = 64;
  int64_t bands = (cols + kBand - 1) / kBand;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t b = 0; b < bands; ++b) {
    int64_t c0 = b * kBand, c1 = std::min(cols, c0 + kBand);
    float acc[kBand] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = dy + r * cols;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) dbias[c] += acc[c - c0];
  }
}

void relu_forward(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(const float* y, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}

void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const float s = 1.0f / (1.0f - p);
  const uint64_t threshold = keep_threshold(p);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = kept_at(seed, offset + uint64_t(i), threshold) ? x[i] * s : 0.0f;
}

void dropout_backward(const float* dy, float* dx, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const float s = 1.0f / (1.0f - p);
  const uint64_t threshold = keep_threshold(p);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += kept_at(seed, offset + uint64_t(i), threshold) ? dy[i] * s : 0.0f;
}

}  // namespace tfm::kernels
