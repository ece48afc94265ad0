// Weight storage types against their definitions: INT8 rows and Q8_0 / Q4_0 blocks round-trip within half a
// step, Q8_0 and Q4_0 pack hand-worked blocks byte for byte as ggml does, bfloat16 rounds to nearest even,
// and every kernel equals the scalar reference (the dequantized weights against the equally quantized input,
// float64 sums) by NMSE, as llama.cpp's test-backend-ops compares its backends.
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

float block_scale(const QuantizedWeight& q, int64_t n, int64_t b) {
  const uint8_t* block = q.data.data<uint8_t>() + n * row_bytes(q.format, q.cols) +
                         b * (q.format == WeightFormat::Q8_0 ? 34 : 18);
  return f16_to_f32(uint16_t(block[0] | block[1] << 8));
}

TEST(Quantized, Q4BlockAsGgmlPacksIt) {
  // Block of 32: the value of largest magnitude is -4 (element 5), so d = -4 / -8 = 0.5 and
  // q = min(15, trunc(x / 0.5 + 8.5)): x = -4 -> 0, x = 3.5 -> 15, x = 0.26 -> trunc(9.02) = 9, x = 0 -> 8,
  // x = 0.25 -> trunc(9.0) = 9 (a tie rounds up, as ggml's + 8.5 does).
  std::vector<float> w(32, 0.0f);
  w[5] = -4.0f;
  w[20] = 3.5f;
  w[1] = 0.26f;
  w[2] = 0.25f;
  const QuantizedWeight q = quantize_weight(w.data(), 1, 32, WeightFormat::Q4_0);
  ASSERT_EQ(q.data.shape(), (Shape{1, 18}));
  const uint8_t* p = q.data.data<uint8_t>();
  EXPECT_EQ(p[0] | p[1] << 8, 0x3800);  // 0.5 in float16, little-endian, before the nibbles
  EXPECT_EQ(p[2 + 5] & 0x0F, 0);        // element 5: low nibble of byte 5
  EXPECT_EQ(p[2 + 4] >> 4, 15);         // element 20 = 4 + 16: high nibble of byte 4
  EXPECT_EQ(p[2 + 1] & 0x0F, 9);
  EXPECT_EQ(p[2 + 2] & 0x0F, 9);
  EXPECT_EQ(p[2 + 0] & 0x0F, 8);
  std::vector<float> back(32);
  dequantize_weight(q, back.data());
  EXPECT_FLOAT_EQ(back[5], -4.0f);
  EXPECT_FLOAT_EQ(back[20], 3.5f);
  EXPECT_FLOAT_EQ(back[1], 0.5f);
}

TEST(Quantized, Q8BlockAsGgmlPacksIt) {
  // max |x| = 31.75 (element 7): d = 31.75 / 127 = 0.25, q = round(x / d), halves away from zero:
  // 31.75 -> 127, -0.125 -> -0.5 -> -1, 0.375 -> 1.5 -> 2, 0.1 -> 0.4 -> 0.
  std::vector<float> w(32, 0.0f);
  w[7] = 31.75f;
  w[9] = -0.125f;
  w[31] = 0.375f;
  w[3] = 0.1f;
  const QuantizedWeight q = quantize_weight(w.data(), 1, 32, WeightFormat::Q8_0);
  ASSERT_EQ(q.data.shape(), (Shape{1, 34}));
  const uint8_t* p = q.data.data<uint8_t>();
  EXPECT_EQ(p[0] | p[1] << 8, 0x3400);  // 0.25 in float16
  EXPECT_EQ(int8_t(p[2 + 7]), 127);
  EXPECT_EQ(int8_t(p[2 + 9]), -1);
  EXPECT_EQ(int8_t(p[2 + 31]), 2);
  EXPECT_EQ(int8_t(p[2 + 3]), 0);
  std::vector<float> back(32);
  dequantize_weight(q, back.data());
  EXPECT_EQ(back[7], 31.75f);
  EXPECT_EQ(back[9], -0.25f);
  EXPECT_EQ(back[31], 0.5f);
}

TEST(Quantized, BlocksRoundTripWithinHalfAStep) {
  const int64_t rows = 3, cols = 96;
  const std::vector<float> w = random_values(size_t(rows * cols), 2);
  for (WeightFormat format : {WeightFormat::Q8_0, WeightFormat::Q4_0}) {
    const QuantizedWeight q = quantize_weight(w.data(), rows, cols, format);
    std::vector<float> back(w.size());
    dequantize_weight(q, back.data());
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < cols; ++k) {
        const float d = std::abs(block_scale(q, n, k / 32));
        // Within half a step (plus the float16 scale's rounding), except that Q4_0's top code (+7) stops
        // short of the positive extreme.
        const float bound = format == WeightFormat::Q8_0
                                ? d * 0.5f + std::abs(w[size_t(n * cols + k)]) * 1e-3f
                                : d * 1.0f + 1e-3f;
        EXPECT_LE(std::abs(back[size_t(n * cols + k)] - w[size_t(n * cols + k)]), bound)
            << format_name(format);
      }
    EXPECT_THROW(quantize_weight(w.data(), 1, 40, format), Error);
  }
}

// Every kernel (the direct ones for 1..8 rows, the panel GEMM for more, row-invariant mode) against the
// scalar reference, by the normalized mean squared error test-backend-ops uses (sum (y - r)^2 / sum r^2),
// and the reference against the float product of the unquantized weights (the type's own error).
TEST(Quantized, EveryKernelMatchesTheScalarReference) {
  for (WeightFormat format :
       {WeightFormat::BF16, WeightFormat::F16, WeightFormat::Int8, WeightFormat::Q8_0, WeightFormat::Q4_0})
    for (auto [m, n, k] : {std::tuple{1, 7, 256}, {2, 5, 96}, {3, 9, 768}, {8, 33, 128}, {40, 70, 96}}) {
      const std::vector<float> w = random_values(size_t(n * k), 3), x = random_values(size_t(m * k), 4, 2.0f),
                               b = random_values(size_t(n), 5);
      const QuantizedWeight q = quantize_weight(w.data(), n, k, format);
      std::vector<float> y(size_t(m * n)), ref(y.size()), exact(y.size());
      quantized_linear(x.data(), m, q, b.data(), y.data());
      reference_linear(x.data(), m, q, b.data(), ref.data());
      gemm_reference(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, exact.data(), n);
      double err = 0, norm = 0, type_err = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        exact[i] += b[i % size_t(n)];
        err += (double(y[i]) - ref[i]) * (double(y[i]) - ref[i]);
        type_err += (double(ref[i]) - exact[i]) * (double(ref[i]) - exact[i]);
        norm += double(ref[i]) * ref[i];
      }
      // The direct kernels sum in float32 (1e-12); the panel path multiplies the float32 input by the
      // dequantized weights, so the integer types differ there by their input's quantization.
      const bool panel = m > kDirectRows && format != WeightFormat::BF16 && format != WeightFormat::F16;
      EXPECT_LT(err / norm, panel ? 1e-3 : 1e-10) << format_name(format) << " " << m << "x" << n << "x" << k;
      const double type_bound = format == WeightFormat::Q4_0   ? 2e-2
                                : format == WeightFormat::BF16 ? 1e-4
                                                               : 1e-3;
      EXPECT_LT(type_err / norm, type_bound) << format_name(format);
      RowInvariantGemmScope invariant;
      std::vector<float> all(y.size()), alone(static_cast<size_t>(n));
      quantized_linear(x.data(), m, q, b.data(), all.data());
      for (int64_t i = 0; i < m; ++i) {
        quantized_linear(x.data() + i * k, 1, q, b.data(), alone.data());
        for (int64_t o = 0; o < n; ++o)
          ASSERT_EQ(all[size_t(i * n + o)], alone[size_t(o)]) << format_name(format) << " row " << i;
        for (int64_t o = 0; o < n; ++o)
          ASSERT_NEAR(all[size_t(i * n + o)], ref[size_t(i * n + o)],
                      1e-4 * (1 + std::abs(ref[size_t(i * n + o)])));
      }
    }
}

TEST(Quantized, FormatsByName) {
  EXPECT_EQ(format_named("q8_0"), WeightFormat::Q8_0);
  EXPECT_EQ(format_named("int4"), WeightFormat::Q4_0);
  EXPECT_EQ(format_named("f16"), WeightFormat::F16);
  EXPECT_THROW(format_named("q5_k"), Error);
  EXPECT_EQ(row_bytes(WeightFormat::Q4_0, 64), 36);
  EXPECT_EQ(row_bytes(WeightFormat::Q8_0, 64), 68);
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

}  // namespace
}  // namespace tfm::kernels
