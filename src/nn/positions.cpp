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

namespace tfm::nn {

Tensor sinusoidal_half_table(int64_t max_len, int64_t d_model) {
  Tensor t = Tensor::zeros_persistent({max_len, d_model});
  float* p = t.f32();
  const int64_t sin_cols = (d_model + 1) / 2;
  for (int64_t pos = 0; pos < max_len; ++pos)
    for (int64_t j = 0; j < d_model; ++j) {
      // Column j of the interleaved angle table: exponent 2 * (j / 2) / d; even j go to the sin half.
      double angle = double(pos) / std::pow(10000.0, 2.0 * double(j / 2) / double(d_model));
      if (j % 2 == 0)
        p[pos * d_model + j / 2] = float(std::sin(angle));
      else
        p[pos * d_model + sin_cols + j / 2] = float(std::cos(angle));
    }
  return t;
}

}  // namespace tfm::nn
