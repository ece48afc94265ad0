#include "kernels/cpu/rope.h"

#include <cmath>

#include "kernels/cpu/scratch.h"

namespace tfm::kernels {

void rope_apply(const float* x, float* y, const int64_t* positions, int64_t rows, int64_t heads,
                int64_t head_dim, float theta, bool inverse) {
  const int64_t half = head_dim / 2, width = heads * head_dim;
#pragma omp parallel for schedule(static) if (rows * width > (1 << 14))
  for (int64_t r = 0; r < rows; ++r) {
    float* cs = thread_scratch(size_t(head_dim));  // cos in [0, half), sin in [half, d)
    for (int64_t i = 0; i < half; ++i) {
      float inv_freq = 1.0f / std::pow(theta, float(2 * i) / float(head_dim));
      float angle = float(positions[r]) * inv_freq;
      cs[i] = float(std::cos(double(angle)));
      cs[half + i] = inverse ? -float(std::sin(double(angle))) : float(std::sin(double(angle)));
    }
    const float* xr = x + r * width;
    float* yr = y + r * width;
    for (int64_t h = 0; h < heads; ++h) {
      const float* a = xr + h * head_dim;
      float* b = yr + h * head_dim;
      if (inverse) {
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          b[i] += a[i] * cs[i] - a[half + i] * cs[half + i];
          b[half + i] += a[half + i] * cs[i] + a[i] * cs[half + i];
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          b[i] = a[i] * cs[i] - a[half + i] * cs[half + i];
          b[half + i] = a[half + i] * cs[i] + a[i] * cs[half + i];
        }
      }
    }
  }
}

}  // namespace tfm::kernels
