#include "kernels/cpu/quantized.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/quantized_direct.h"
#include "kernels/cpu/scratch.h"

namespace tfm::kernels {

namespace {

constexpr int64_t kQ8Bytes = 2 + kBlockWeights;      // float16 d, int8 q[32]
constexpr int64_t kQ4Bytes = 2 + kBlockWeights / 2;  // float16 d, uint8 q[16]

void store_half(uint8_t* p, float d) {
  const uint16_t bits = f32_to_f16(d);
  std::memcpy(p, &bits, 2);
}
float load_half(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return f16_to_f32(bits);
}

// ggml's quantize_row_q8_0_ref for one block.
void quantize_q8_block(const float* x, uint8_t* block) {
  float amax = 0;
  for (int64_t j = 0; j < kBlockWeights; ++j) amax = std::max(amax, std::abs(x[j]));
  const float d = amax / 127.0f, inv = d != 0 ? 1.0f / d : 0.0f;
  store_half(block, d);
  for (int64_t j = 0; j < kBlockWeights; ++j) block[2 + j] = uint8_t(int8_t(std::round(x[j] * inv)));
}

// ggml's quantize_row_q4_0_ref for one block.
void quantize_q4_block(const float* x, uint8_t* block) {
  float extreme = 0;  // the value of largest magnitude, with its sign
  for (int64_t j = 0; j < kBlockWeights; ++j)
    if (std::abs(x[j]) > std::abs(extreme)) extreme = x[j];
  const float d = extreme / -8.0f, inv = d != 0 ? 1.0f / d : 0.0f;
  store_half(block, d);
  for (int64_t j = 0; j < kBlockWeights / 2; ++j) {
    const int lo = std::min(15, int(int8_t(x[j] * inv + 8.5f)));
    const int hi = std::min(15, int(int8_t(x[j + kBlockWeights / 2] * inv + 8.5f)));
    block[2 + j] = uint8_t(lo | hi << 4);
  }
}

void dequantize_row(const QuantizedWeight& q, int64_t n, float* out) {
  const int64_t K = q.cols;
  switch (q.format) {
    case WeightFormat::BF16: {
      const uint16_t* bits = static_cast<const uint16_t*>(q.data.raw()) + n * K;
      for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(bits[k]);
      return;
    }
    case WeightFormat::F16: {
      const uint16_t* bits = static_cast<const uint16_t*>(q.data.raw()) + n * K;
      for (int64_t k = 0; k < K; ++k) out[k] = f16_to_f32(bits[k]);
      return;
    }
    case WeightFormat::Int8: {
      const int8_t* v = q.data.data<int8_t>() + n * K;
      for (int64_t k = 0; k < K; ++k) out[k] = float(v[k]) * q.scale.f32()[n];
      return;
    }
    case WeightFormat::Q8_0:
    case WeightFormat::Q4_0: {
      const bool q4 = q.format == WeightFormat::Q4_0;
      const uint8_t* row = q.data.data<uint8_t>() + n * row_bytes(q.format, K);
      for (int64_t b = 0; b < K / kBlockWeights; ++b) {
        const uint8_t* block = row + b * (q4 ? kQ4Bytes : kQ8Bytes);
        const float d = load_half(block);
        float* o = out + b * kBlockWeights;
        for (int64_t j = 0; j < kBlockWeights; ++j)
          o[j] = q4 ? d * float(int(j < 16 ? block[2 + j] & 0x0F : block[2 + j - 16] >> 4) - 8)
                    : d * float(int8_t(block[2 + j]));
      }
      return;
    }
  }
}

// Output rows widened into float32 at a time by the many-row path: a panel of about 1 MB (L2-sized), a
// multiple of 16 rows.
int64_t panel_rows(int64_t K) { return std::max<int64_t>(16, (int64_t(1) << 18) / K / 16 * 16); }

// y = x W^T for many rows: each panel of output rows is widened once, then multiplied by the float32 GEMM.
void panel_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y) {
  const int64_t N = w.rows, K = w.cols, P = std::min(N, panel_rows(K));
  float* panel = thread_scratch(size_t(P * K), 4);
  for (int64_t n0 = 0; n0 < N; n0 += P) {
    const int64_t rows = std::min(P, N - n0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) dequantize_row(w, n0 + r, panel + r * K);
    gemm(false, true, m, rows, K, 1.0f, x, K, panel, K, 0.0f, y + n0, N);
  }
  if (bias)
#pragma omp parallel for schedule(static) if (m * N > (1 << 16))
    for (int64_t i = 0; i < m; ++i)
      for (int64_t n = 0; n < N; ++n) y[i * N + n] += bias[n];
}

}  // namespace

const char* format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::Int8:
      return "int8";
    case WeightFormat::Q8_0:
      return "q8_0";
    case WeightFormat::Q4_0:
      return "q4_0";
    case WeightFormat::BF16:
      return "bf16";
    case WeightFormat::F16:
      return "f16";
  }
  return "?";
}

WeightFormat format_named(const std::string& name) {
  for (WeightFormat f :
       {WeightFormat::BF16, WeightFormat::F16, WeightFormat::Int8, WeightFormat::Q8_0, WeightFormat::Q4_0})
    if (name == format_name(f)) return f;
  if (name == "int4") return WeightFormat::Q4_0;
  fail("unknown weight type '{}' (bf16, f16, int8, q8_0, q4_0; int4 is q4_0)", name);
}

bool is_block_format(WeightFormat format) {
  return format == WeightFormat::Q8_0 || format == WeightFormat::Q4_0;
}

int64_t row_bytes(WeightFormat format, int64_t cols) {
  switch (format) {
    case WeightFormat::Int8:
      return cols;
    case WeightFormat::Q8_0:
      return cols / kBlockWeights * kQ8Bytes;
    case WeightFormat::Q4_0:
      return cols / kBlockWeights * kQ4Bytes;
    case WeightFormat::BF16:
    case WeightFormat::F16:
      return 2 * cols;
  }
  return 0;
}

QuantizedWeight quantize_weight(const float* w, int64_t rows, int64_t cols, WeightFormat format) {
  if (is_block_format(format) && cols % kBlockWeights != 0)
    fail("{} needs rows of a multiple of {} weights, not {}", format_name(format), kBlockWeights, cols);
  QuantizedWeight q;
  q.format = format;
  q.rows = rows;
  q.cols = cols;
  switch (format) {
    case WeightFormat::BF16:
    case WeightFormat::F16: {
      q.data =
          Tensor::empty_persistent({rows, cols}, format == WeightFormat::BF16 ? DType::BF16 : DType::F16);
      uint16_t* out = static_cast<uint16_t*>(q.data.raw());
      const bool bf16 = format == WeightFormat::BF16;
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
      for (int64_t i = 0; i < rows * cols; ++i) out[i] = bf16 ? f32_to_bf16(w[i]) : f32_to_f16(w[i]);
      return q;
    }
    case WeightFormat::Int8: {
      q.data = Tensor::empty_persistent({rows, cols}, DType::I8);
      q.scale = Tensor::empty_persistent({rows}, DType::F32);
      const QuantizedInput rows_q = quantize_input(format, w, rows, cols);
      std::memcpy(q.data.raw(), rows_q.values.data(), rows_q.values.size());
      std::copy(rows_q.scales.begin(), rows_q.scales.end(), q.scale.f32());
      return q;
    }
    case WeightFormat::Q8_0:
    case WeightFormat::Q4_0: {
      const int64_t stride = row_bytes(format, cols),
                    block_bytes = format == WeightFormat::Q8_0 ? kQ8Bytes : kQ4Bytes;
      q.data = Tensor::empty_persistent({rows, stride}, DType::U8);
      uint8_t* out = q.data.data<uint8_t>();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
      for (int64_t n = 0; n < rows; ++n)
        for (int64_t b = 0; b < cols / kBlockWeights; ++b) {
          const float* x = w + n * cols + b * kBlockWeights;
          uint8_t* block = out + n * stride + b * block_bytes;
          format == WeightFormat::Q8_0 ? quantize_q8_block(x, block) : quantize_q4_block(x, block);
        }
      return q;
    }
  }
  return q;
}

void dequantize_rows(const QuantizedWeight& q, int64_t first, int64_t count, float* out) {
#pragma omp parallel for schedule(static) if (count * q.cols > (1 << 16))
  for (int64_t r = 0; r < count; ++r) dequantize_row(q, first + r, out + r * q.cols);
}

void quantized_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y) {
  // Row-invariant mode (tfm serve's batches) keeps every row on the direct kernels: each row's sums are then
  // the same whatever else is in the batch.
  if (m > kDirectRows && !row_invariant_gemm()) return panel_linear(x, m, w, bias, y);
  const QuantizedInput qx = quantize_input(w.format, x, m, w.cols);
  for (int64_t i = 0; i < m; i += kDirectRows)
    direct_linear(x, qx, i, std::min(kDirectRows, m - i), w, bias, y);
}

void reference_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y) {
  reference_rows(x, quantize_input(w.format, x, m, w.cols), 0, m, w, bias, y);
}

}  // namespace tfm::kernels
