// Weight quantization against its definitions: INT8 rows and Q4_0 blocks round-trip within half a step,
// Q4_0 packs a hand-worked block as llama.cpp does, and the integer kernels equal a float64 reference
// computed from the dequantized weights and the equally quantized inputs (exact integer sums), for sizes
// that exercise the 64-byte, 32-byte and scalar paths; bfloat16 rounds to nearest even and its kernels equal
// the product of the rounded weights.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <tuple>

#include "kernels/cpu/gemm.h"
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

// bfloat16: the top 16 bits of the float rounded to nearest, ties to even (hand-worked values), and back
// exactly; within half a bfloat16 step (2^-8 relative) of the float.
TEST(Quantized, Bf16RoundsToNearestEven) {
  const float w[] = {1.0f,
                     std::bit_cast<float>(0x3f808000u) /* a tie: stays 0x3f80 */,
                     std::bit_cast<float>(0x3f818000u) /* a tie: up to 0x3f82 */,
                     std::bit_cast<float>(0x3f808001u) /* above the tie: 0x3f81 */,
                     -2.5f,
                     0.0f};
  const QuantizedWeight q = quantize_weight(w, 2, 3, WeightFormat::BF16);
  const uint16_t* bits = static_cast<const uint16_t*>(q.data.raw());
  EXPECT_EQ(bits[0], 0x3f80);
  EXPECT_EQ(bits[1], 0x3f80);
  EXPECT_EQ(bits[2], 0x3f82);
  EXPECT_EQ(bits[3], 0x3f81);
  EXPECT_EQ(bits[4], 0xc020);
  float back[6];
  dequantize_weight(q, back);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[4], -2.5f);
  const std::vector<float> r = random_values(4096, 9);
  const QuantizedWeight qr = quantize_weight(r.data(), 64, 64, WeightFormat::BF16);
  std::vector<float> rb(r.size());
  dequantize_weight(qr, rb.data());
  for (size_t i = 0; i < r.size(); ++i) EXPECT_LE(std::abs(rb[i] - r[i]), std::abs(r[i]) * 0x1p-8f);
}

// Both bfloat16 paths (a few rows from the stored bits, more through the float32 GEMM) against a float64
// product of the rounded weights: float32 accumulation is all they may lose. Row-invariant mode gives every
// row what it gets alone.
TEST(Quantized, Bf16KernelEqualsTheRoundedWeightsProduct) {
  for (auto [m, n, k] : {std::tuple{1, 7, 256}, {3, 5, 100}, {8, 9, 768}, {40, 6, 96}}) {
    const std::vector<float> w = random_values(size_t(n * k), 3), x = random_values(size_t(m * k), 4, 2.0f),
                             b = random_values(size_t(n), 5);
    const QuantizedWeight q = quantize_weight(w.data(), n, k, WeightFormat::BF16);
    std::vector<float> wq(w.size()), y(static_cast<size_t>(m * n));
    dequantize_weight(q, wq.data());
    quantized_linear(x.data(), m, q, b.data(), y.data());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t o = 0; o < n; ++o) {
        double want = b[size_t(o)], magnitude = std::abs(b[size_t(o)]);
        for (int64_t j = 0; j < k; ++j) {
          want += double(x[size_t(i * k + j)]) * wq[size_t(o * k + j)];
          magnitude += std::abs(double(x[size_t(i * k + j)]) * wq[size_t(o * k + j)]);
        }
        EXPECT_NEAR(y[size_t(i * n + o)], want, 1e-6 * magnitude)
            << m << " rows, row " << i << " output " << o;
      }
    RowInvariantGemmScope invariant;
    std::vector<float> all(static_cast<size_t>(m * n)), alone(static_cast<size_t>(n));
    quantized_linear(x.data(), m, q, b.data(), all.data());
    for (int64_t i = 0; i < m; ++i) {
      quantized_linear(x.data() + i * k, 1, q, b.data(), alone.data());
      for (int64_t o = 0; o < n; ++o) EXPECT_EQ(all[size_t(i * n + o)], alone[size_t(o)]) << "row " << i;
    }
  }
}

}  // namespace
}  // namespace tfm::kernels
