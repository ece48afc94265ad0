// Weight quantization against its definitions: INT8 rows and Q4_0 blocks round-trip within half a step,
// Q4_0 packs a hand-worked block as llama.cpp does, and the integer kernels equal a float64 reference
// computed from the dequantized weights and the equally quantized inputs (exact integer sums), for sizes
// that exercise the 64-byte, 32-byte and scalar paths.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cpu/quantized.h"

namespace tfm::kernels {
namespace {

std::vector<float> random_values(size_t n, uint64_t seed, float spread = 1.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

TEST(Quantized, Int8RowsRoundTripWithinHalfAStep) {
  const int64_t rows = 5, cols = 70;
  const std::vector<float> w = random_values(size_t(rows * cols), 1);
  const QuantizedWeight q = quantize_weight(w.data(), rows, cols, WeightFormat::Int8);
  std::vector<float> back(w.size());
  dequantize_weight(q, back.data());
  for (int64_t n = 0; n < rows; ++n) {
    float amax = 0;
    for (int64_t k = 0; k < cols; ++k) amax = std::max(amax, std::abs(w[size_t(n * cols + k)]));
    EXPECT_FLOAT_EQ(q.scale.f32()[n], amax / 127.0f);
    for (int64_t k = 0; k < cols; ++k)
      EXPECT_LE(std::abs(back[size_t(n * cols + k)] - w[size_t(n * cols + k)]),
                q.scale.f32()[n] * 0.5f + 1e-7f);
  }
}

TEST(Quantized, Q4BlockAsLlamaCppPacksIt) {
  // Block of 32: the value of largest magnitude is -4 (element 5), so d = -4 / -8 = 0.5 and
  // q = round(x / 0.5) + 8: x = -4 -> 0, x = 3.5 -> 15, x = 0.26 -> round(0.52) + 8 = 9, x = 0 -> 8.
  std::vector<float> w(32, 0.0f);
  w[5] = -4.0f;
  w[20] = 3.5f;
  w[1] = 0.26f;
  const QuantizedWeight q = quantize_weight(w.data(), 1, 32, WeightFormat::Q4_0);
  EXPECT_FLOAT_EQ(q.scale.f32()[0], 0.5f);
  const uint8_t* p = q.data.data<uint8_t>();
  EXPECT_EQ(p[5] & 0x0F, 0);  // element 5: low nibble of byte 5
  EXPECT_EQ(p[4] >> 4, 15);   // element 20 = 4 + 16: high nibble of byte 4
  EXPECT_EQ(p[1] & 0x0F, 9);
  EXPECT_EQ(p[0] & 0x0F, 8);
  std::vector<float> back(32);
  dequantize_weight(q, back.data());
  EXPECT_FLOAT_EQ(back[5], -4.0f);
  EXPECT_FLOAT_EQ(back[20], 3.5f);
  EXPECT_FLOAT_EQ(back[1], 0.5f);
}

TEST(Quantized, Q4BlocksRoundTripWithinHalfAStep) {
  const int64_t rows = 3, cols = 96;
  const std::vector<float> w = random_values(size_t(rows * cols), 2);
  const QuantizedWeight q = quantize_weight(w.data(), rows, cols, WeightFormat::Q4_0);
  std::vector<float> back(w.size());
  dequantize_weight(q, back.data());
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < cols; ++k) {
      const float d = std::abs(q.scale.f32()[n * 3 + k / 32]);
      // Within half a step, except that the top code (+7) stops short of the positive extreme.
      EXPECT_LE(std::abs(back[size_t(n * cols + k)] - w[size_t(n * cols + k)]), d * 1.0f + 1e-6f);
    }
  EXPECT_THROW(quantize_weight(w.data(), 1, 40, WeightFormat::Q4_0), Error);
}

// y = x W^T + b with x quantized as the kernel quantizes it (INT8: per row; Q4_0: per block of 32),
// accumulated in double from the dequantized values: equal to the kernel up to float rounding.
void expect_matches_reference(WeightFormat format, int64_t m, int64_t n, int64_t k) {
  const std::vector<float> w = random_values(size_t(n * k), 3), x = random_values(size_t(m * k), 4, 2.0f),
                           b = random_values(size_t(n), 5);
  const QuantizedWeight q = quantize_weight(w.data(), n, k, format);
  std::vector<float> wq(w.size());
  dequantize_weight(q, wq.data());
  const int64_t group = format == WeightFormat::Int8 ? k : 32;
  std::vector<double> xq(x.size());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t g = 0; g < k; g += group) {
      float amax = 0;
      for (int64_t j = g; j < g + group; ++j) amax = std::max(amax, std::abs(x[size_t(i * k + j)]));
      const float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
      for (int64_t j = g; j < g + group; ++j)
        xq[size_t(i * k + j)] = double(std::lrint(x[size_t(i * k + j)] * inv)) * scale;
    }
  std::vector<float> y(size_t(m * n));
  quantized_linear(x.data(), m, q, b.data(), y.data());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n; ++o) {
      double want = b[size_t(o)], exact = b[size_t(o)];
      for (int64_t j = 0; j < k; ++j) {
        want += xq[size_t(i * k + j)] * wq[size_t(o * k + j)];
        exact += double(x[size_t(i * k + j)]) * w[size_t(o * k + j)];
      }
      EXPECT_NEAR(y[size_t(i * n + o)], want, 1e-4 * (1 + std::abs(want))) << "row " << i << " output " << o;
      EXPECT_NEAR(y[size_t(i * n + o)], exact,
                  (format == WeightFormat::Int8 ? 0.05 : 0.6) * std::sqrt(double(k)))
          << "far from the float product";
    }
}

TEST(Quantized, Int8KernelEqualsTheIntegerReference) {
  expect_matches_reference(WeightFormat::Int8, 3, 7, 256);  // 64-byte steps
  expect_matches_reference(WeightFormat::Int8, 2, 5, 100);  // 64 + scalar tail
  expect_matches_reference(WeightFormat::Int8, 1, 4, 96);   // 64 + 32
}

TEST(Quantized, Q4KernelEqualsTheIntegerReference) {
  expect_matches_reference(WeightFormat::Q4_0, 3, 7, 256);
  expect_matches_reference(WeightFormat::Q4_0, 1, 5, 32);
}

}  // namespace
}  // namespace tfm::kernels
