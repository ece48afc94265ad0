#include "nn/positions.h"

#include <cmath>

namespace tfm::nn {

Tensor sinusoidal_table(int64_t max_len, int64_t d_model) {
  Tensor t = Tensor::zeros_persistent({max_len, d_model});
  float* p = t.f32();
  const float k = -std::log(10000.0f) / float(d_model);
  for (int64_t i = 0; i < d_model; i += 2) {
    float div = std::exp(float(i) * k);
    for (int64_t pos = 0; pos < max_len; ++pos) {
      float angle = float(pos) * div;
      p[pos * d_model + i] = std::sin(angle);
      if (i + 1 < d_model) p[pos * d_model + i + 1] = std::cos(angle);
    }
  }
  return t;
}

}  // namespace tfm::nn
