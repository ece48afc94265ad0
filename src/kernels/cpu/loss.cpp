#include "kernels/cpu/loss.h"

#include <cmath>

#include "core/error.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/vector_math.h"

namespace tfm::kernels {

double cross_entropy_forward(const float* logits, const int64_t* labels, int64_t rows, int64_t classes,
                             int64_t ignore_index, float smoothing, float* lse, int64_t* count) {
  for (int64_t r = 0; r < rows; ++r)
    if (labels[r] != ignore_index && (labels[r] < 0 || labels[r] >= classes))
      fail("label {} at row {} is outside the {} classes", labels[r], r, classes);
  double total = 0;
  int64_t n = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, n)
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = logits + r * classes;
    float mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, z[c]);
    const double sum = sum_exp_shifted(z, mx, classes);
    double zsum = 0;
#pragma omp simd reduction(+ : zsum)
    for (int64_t c = 0; c < classes; ++c) zsum += z[c];
    double l = mx + std::log(sum);
    lse[r] = float(l);
    if (labels[r] == ignore_index) continue;
    double nll = l - z[labels[r]];
    double smooth = l - zsum / double(classes);
    total += (1.0 - smoothing) * nll + smoothing * smooth;
    ++n;
  }
  *count = n;
  return n ? total / double(n) : 0.0;
}

void cross_entropy_backward(const float* logits, const int64_t* labels, const float* lse, int64_t rows,
                            int64_t classes, int64_t ignore_index, float smoothing, int64_t count,
                            float upstream, float* dlogits) {
  if (count == 0) return;
  const float g = upstream / float(count);
  const float uniform = smoothing / float(classes);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] == ignore_index) continue;
    const float* z = logits + r * classes;
    float* dz = dlogits + r * classes;
    float* p = thread_scratch(size_t(classes));
    exp_shifted(z, lse[r], p, classes);  // the softmax
#pragma omp simd
    for (int64_t c = 0; c < classes; ++c) dz[c] += g * (p[c] - uniform);
    dz[labels[r]] -= g * (1.0f - smoothing);
  }
}

}  // namespace tfm::kernels
