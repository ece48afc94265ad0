#include "kernels/cpu/quantized.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/gemm.h"

namespace tfm::kernels {

namespace {

constexpr int64_t kBlock = 32;  // Q4_0 / Q8_0 block length

// Symmetric int8 quantization of n values: returns the scale (0 for an all-zero row).
float quantize_row_int8(const float* x, int64_t n, int8_t* q) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(x[i]));
  const float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
  for (int64_t i = 0; i < n; ++i) q[i] = int8_t(std::lrint(x[i] * inv));
  return scale;
}

// sum_k a[k] b[k] over int8 vectors of length n.
int32_t dot_int8(const int8_t* a, const int8_t* b, int64_t n) {
  int64_t k = 0;
  int32_t sum = 0;
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  // vpdpbusd multiplies unsigned by signed bytes: |a| against b with a's sign moved onto b.
  __m512i acc = _mm512_setzero_si512();
  for (; k + 64 <= n; k += 64) {
    const __m512i va = _mm512_loadu_si512(a + k), vb = _mm512_loadu_si512(b + k);
    const __m512i abs_a = _mm512_abs_epi8(va);
    const __mmask64 negative = _mm512_movepi8_mask(va);
    const __m512i signed_b = _mm512_mask_sub_epi8(vb, negative, _mm512_setzero_si512(), vb);
    acc = _mm512_dpbusd_epi32(acc, abs_a, signed_b);
  }
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, acc);
  for (int32_t lane : lanes) sum += lane;
#if defined(__AVX512VL__)
  if (k + 32 <= n) {  // a Q4_0 / Q8_0 block
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k));
    const __m256i signed_b = _mm256_mask_sub_epi8(vb, _mm256_movepi8_mask(va), _mm256_setzero_si256(), vb);
    alignas(32) int32_t half[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(half),
                       _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(va), signed_b));
    for (int32_t lane : half) sum += lane;
    k += 32;
  }
#endif
#endif
  for (; k < n; ++k) sum += int32_t(a[k]) * int32_t(b[k]);
  return sum;
}

// Q4_0 weights of one block (16 bytes) as 32 int8 values (q - 8).
void unpack_q4(const uint8_t* packed, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = int8_t(int(packed[j] & 0x0F) - 8);
    out[j + 16] = int8_t(int(packed[j] >> 4) - 8);
  }
}

// Rows a BF16 product runs from the stored bits at a time; more go through a float32 copy and the GEMM
// (outside row-invariant mode).
constexpr int64_t kBf16DirectRows = 8;  // 2 x 8 accumulators + 2 weight vectors: 18 of the 32 zmm

#ifdef __AVX512F__
// 16 bfloat16 weights widened to float32: a 16-bit shift of the bits (exact). The zero-masked forms of the
// intrinsics: GCC 12 warns of the undefined pass-through the plain ones carry.
inline __m512 load_bf16(const uint16_t* w) {
  const __m512i wide =
      _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, wide, 16));
}

// The sum of the 16 lanes in _mm512_reduce_add_ps's order (halves, quarters, then pairs), written with
// the zero-masked extract for the same reason.
inline float sum_lanes(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 eight = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1)),
                                     _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)));
  const __m128 four = _mm_add_ps(_mm256_extractf128_ps(eight, 1), _mm256_castps256_ps128(eight));
  const __m128 two = _mm_add_ps(four, _mm_shuffle_ps(four, four, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(two) + _mm_cvtss_f32(_mm_shuffle_ps(two, two, 1));
}
#endif

// y[i, n] = sum_k x[i, k] w[n, k] for the M rows of x, w in bfloat16; M a constant, so the accumulators
// (two per row, 32 weights a step: FMA latency hidden) stay in registers.
template <int M>
void bf16_rows(const float* x, const uint16_t* w, int64_t N, int64_t K, const float* bias, float* y) {
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    const uint16_t* row = w + n * K;
    float sums[M] = {};
    int64_t k = 0;
#ifdef __AVX512F__
    __m512 even[M], odd[M];
    for (int i = 0; i < M; ++i) even[i] = odd[i] = _mm512_setzero_ps();
    for (; k + 32 <= K; k += 32) {
      const __m512 w0 = load_bf16(row + k), w1 = load_bf16(row + k + 16);
      for (int i = 0; i < M; ++i) {
        even[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * K + k), w0, even[i]);
        odd[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * K + k + 16), w1, odd[i]);
      }
    }
    for (; k + 16 <= K; k += 16) {
      const __m512 w0 = load_bf16(row + k);
      for (int i = 0; i < M; ++i) even[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * K + k), w0, even[i]);
    }
    for (int i = 0; i < M; ++i) sums[i] = sum_lanes(_mm512_add_ps(even[i], odd[i]));
#endif
    for (; k < K; ++k)
      for (int i = 0; i < M; ++i) sums[i] += x[i * K + k] * bf16_to_f32(row[k]);
    for (int i = 0; i < M; ++i) y[i * N + n] = sums[i] + (bias ? bias[n] : 0.0f);
  }
}

// m in [1, kBf16DirectRows] rows.
void bf16_rows(const float* x, int64_t m, const uint16_t* w, int64_t N, int64_t K, const float* bias,
               float* y) {
  using Kernel = void (*)(const float*, const uint16_t*, int64_t, int64_t, const float*, float*);
  static constexpr Kernel kByRows[kBf16DirectRows] = {bf16_rows<1>, bf16_rows<2>, bf16_rows<3>, bf16_rows<4>,
                                                      bf16_rows<5>, bf16_rows<6>, bf16_rows<7>, bf16_rows<8>};
  kByRows[m - 1](x, w, N, K, bias, y);
}

}  // namespace

bool bf16_direct(int64_t m) { return m <= kBf16DirectRows || row_invariant_gemm(); }

QuantizedWeight quantize_weight(const float* w, int64_t rows, int64_t cols, WeightFormat format) {
  QuantizedWeight q;
  q.format = format;
  q.rows = rows;
  q.cols = cols;
  if (format == WeightFormat::Int8) {
    q.data = Tensor::empty_persistent({rows, cols}, DType::I8);
    q.scale = Tensor::empty_persistent({rows}, DType::F32);
    for (int64_t n = 0; n < rows; ++n)
      q.scale.f32()[n] = quantize_row_int8(w + n * cols, cols, q.data.data<int8_t>() + n * cols);
    return q;
  }
  if (format == WeightFormat::BF16) {
    q.data = Tensor::empty_persistent({rows, cols}, DType::BF16);
    uint16_t* out = static_cast<uint16_t*>(q.data.raw());
    for (int64_t i = 0; i < rows * cols; ++i) out[i] = f32_to_bf16(w[i]);
    return q;
  }
  if (cols % kBlock != 0) fail("Q4_0 needs rows of a multiple of {} weights, not {}", kBlock, cols);
  const int64_t blocks = cols / kBlock;
  q.data = Tensor::empty_persistent({rows, cols / 2}, DType::U8);
  q.scale = Tensor::empty_persistent({rows, blocks}, DType::F32);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const float* x = w + n * cols + b * kBlock;
      float extreme = 0;  // the value of largest magnitude, with its sign
      for (int64_t j = 0; j < kBlock; ++j)
        if (std::abs(x[j]) > std::abs(extreme)) extreme = x[j];
      const float d = extreme / -8.0f, inv = d != 0 ? 1.0f / d : 0.0f;
      q.scale.f32()[n * blocks + b] = d;
      uint8_t* out = q.data.data<uint8_t>() + n * (cols / 2) + b * (kBlock / 2);
      for (int64_t j = 0; j < kBlock / 2; ++j) {
        const int lo = std::clamp(int(std::lrint(x[j] * inv)) + 8, 0, 15);
        const int hi = std::clamp(int(std::lrint(x[j + kBlock / 2] * inv)) + 8, 0, 15);
        out[j] = uint8_t(lo | hi << 4);
      }
    }
  return q;
}

void dequantize_weight(const QuantizedWeight& q, float* out) {
  if (q.format == WeightFormat::BF16) {
    const uint16_t* bits = static_cast<uint16_t*>(q.data.raw());
#pragma omp parallel for schedule(static) if (q.rows * q.cols > (1 << 16))
    for (int64_t i = 0; i < q.rows * q.cols; ++i) out[i] = bf16_to_f32(bits[i]);
    return;
  }
  if (q.format == WeightFormat::Int8) {
    for (int64_t n = 0; n < q.rows; ++n)
      for (int64_t k = 0; k < q.cols; ++k)
        out[n * q.cols + k] = float(q.data.data<int8_t>()[n * q.cols + k]) * q.scale.f32()[n];
    return;
  }
  const int64_t blocks = q.cols / kBlock;
  int8_t values[kBlock];
  for (int64_t n = 0; n < q.rows; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      unpack_q4(q.data.data<uint8_t>() + n * (q.cols / 2) + b * (kBlock / 2), values);
      for (int64_t j = 0; j < kBlock; ++j)
        out[n * q.cols + b * kBlock + j] = float(values[j]) * q.scale.f32()[n * blocks + b];
    }
}

void quantized_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y) {
  const int64_t N = w.rows, K = w.cols;
  if (w.format == WeightFormat::BF16) {
    // Row-invariant mode (tfm serve's batches) keeps every row on the direct path, a few rows at a time:
    // each row's sums are then the same whatever else is in the batch.
    if (bf16_direct(m)) {
      for (int64_t i = 0; i < m; i += kBf16DirectRows)
        bf16_rows(x + i * K, std::min(kBf16DirectRows, m - i), static_cast<const uint16_t*>(w.data.raw()), N,
                  K, bias, y + i * N);
      return;
    }
    std::vector<float> wide(static_cast<size_t>(N * K));
    dequantize_weight(w, wide.data());
    gemm(false, true, m, N, K, 1.0f, x, K, wide.data(), K, 0.0f, y, N);
    if (bias)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t n = 0; n < N; ++n) y[i * N + n] += bias[n];
    return;
  }
  std::vector<int8_t> qx(static_cast<size_t>(m * K));
  if (w.format == WeightFormat::Int8) {
    std::vector<float> sx(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) sx[size_t(i)] = quantize_row_int8(x + i * K, K, qx.data() + i * K);
    const int8_t* qw = w.data.data<int8_t>();
    const float* sw = w.scale.f32();
#pragma omp parallel for schedule(static) if (N * m * K > (1 << 16))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < m; ++i)
        y[i * N + n] = float(dot_int8(qx.data() + i * K, qw + n * K, K)) * sx[size_t(i)] * sw[n] +
                       (bias ? bias[n] : 0.0f);
    return;
  }
  // Q4_0 x Q8_0: per block of 32, an int8 dot product scaled by both block scales.
  const int64_t blocks = K / kBlock;
  std::vector<float> sx(static_cast<size_t>(m * blocks));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t b = 0; b < blocks; ++b)
      sx[size_t(i * blocks + b)] =
          quantize_row_int8(x + i * K + b * kBlock, kBlock, qx.data() + i * K + b * kBlock);
  const uint8_t* packed = w.data.data<uint8_t>();
  const float* sw = w.scale.f32();
#pragma omp parallel for schedule(static) if (N * m * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    std::vector<int8_t> row(static_cast<size_t>(K));
    for (int64_t b = 0; b < blocks; ++b)
      unpack_q4(packed + n * (K / 2) + b * (kBlock / 2), row.data() + b * kBlock);
    for (int64_t i = 0; i < m; ++i) {
      float sum = 0;
      for (int64_t b = 0; b < blocks; ++b)
        sum += float(dot_int8(qx.data() + i * K + b * kBlock, row.data() + b * kBlock, kBlock)) *
               sx[size_t(i * blocks + b)] * sw[n * blocks + b];
      y[i * N + n] = sum + (bias ? bias[n] : 0.0f);
    }
  }
}

}  // namespace tfm::kernels
