#include "kernels/cpu/quantized_direct.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "tensor/dtype.h"

namespace tfm::kernels {

namespace {

// ggml's half-away-from-zero rounding (roundf) of the Q8_0 definition.
float quantize_group(const float* x, int64_t n, int8_t* q, bool ties_away) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(x[i]));
  const float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
  for (int64_t i = 0; i < n; ++i)
    q[i] = int8_t(ties_away ? std::round(x[i] * inv) : float(std::lrint(x[i] * inv)));
  return scale;
}

bool cpu_has_avx2() {
  static const bool has =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return has;
}

#ifdef __AVX512F__
// 16 bfloat16 weights widened to float32: a 16-bit shift of the bits (exact). The zero-masked forms of the
// intrinsics: GCC 12 warns of the undefined pass-through the plain ones carry.
inline __m512 load_bf16_512(const uint16_t* w) {
  const __m512i wide =
      _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, wide, 16));
}

// The sum of the 16 lanes (halves, quarters, then pairs), with the zero-masked extract for the same reason.
inline float sum_lanes_512(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 eight = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 1)),
                                     _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, d, 0)));
  const __m128 four = _mm_add_ps(_mm256_extractf128_ps(eight, 1), _mm256_castps256_ps128(eight));
  const __m128 two = _mm_add_ps(four, _mm_shuffle_ps(four, four, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(two) + _mm_cvtss_f32(_mm_shuffle_ps(two, two, 1));
}

// bfloat16 rows on AVX-512: two accumulators per input row, 32 weights a step (FMA latency hidden).
template <int M>
void bf16_rows_512(const float* x, const uint16_t* w, int64_t N, int64_t K, const float* bias, float* y) {
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    const uint16_t* row = w + n * K;
    __m512 even[M], odd[M];
    for (int i = 0; i < M; ++i) even[i] = odd[i] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m512 w0 = load_bf16_512(row + k), w1 = load_bf16_512(row + k + 16);
      for (int i = 0; i < M; ++i) {
        even[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * K + k), w0, even[i]);
        odd[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * K + k + 16), w1, odd[i]);
      }
    }
    for (; k + 16 <= K; k += 16) {
      const __m512 w0 = load_bf16_512(row + k);
      for (int i = 0; i < M; ++i) even[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i * K + k), w0, even[i]);
    }
    float sums[M];
    for (int i = 0; i < M; ++i) sums[i] = sum_lanes_512(_mm512_add_ps(even[i], odd[i]));
    for (; k < K; ++k)
      for (int i = 0; i < M; ++i) sums[i] += x[i * K + k] * bf16_to_f32(row[k]);
    for (int i = 0; i < M; ++i) y[i * N + n] = sums[i] + (bias ? bias[n] : 0.0f);
  }
}
#endif

}  // namespace

// AVX2 + FMA + F16C, compiled whatever the build's -march and run only where the CPU has them.
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
namespace {

inline float sum_lanes(__m256 v) {
  const __m128 four = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
  return _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)));
}

// 8 bfloat16 / float16 weights widened to float32 (both exact).
inline __m256 load_bf16(const uint16_t* w) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline __m256 load_f16(const uint16_t* w) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
}

// Eight int32 partial sums of the 32 int8 products a[j] b[j], |a|, |b| <= 127: vpmaddubsw multiplies
// unsigned by signed bytes, so |a| meets b with a's sign (the pair sums, at most 2 * 127^2, fit int16).
inline __m256i dot32(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// The 32 weights of a Q4_0 block as int8 (q - 8): bytes' low nibbles first, then their high ones.
inline __m256i unpack_q4(const uint8_t* packed) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m256i nibbles =
      _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), _mm_and_si128(bytes, mask));
  return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
}

// bfloat16 / float16 rows. Each output sums its 8-weight chunks in four float32 lanes of chunks, chunk c
// into lane c mod 4 (the tail chunks into lane 0), then adds lanes 0, 1, 2, 3 in that order: the same
// sum whatever M is. One row runs the four lanes together to hide the FMA latency; two rows run two lanes
// at a time and more rows one, in passes over the weight row (the later passes read it from L1).
template <int M, bool kF16>
void half_rows(const float* x, const uint16_t* w, int64_t N, int64_t K, const float* bias, float* y) {
  constexpr int kLanes = 4, G = M == 1 ? 4 : M == 2 ? 2 : 1;
  const int64_t main_end = K / (8 * kLanes) * (8 * kLanes);
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    const uint16_t* row = w + n * K;
    __m256 total[M];
    for (int p = 0; p < kLanes / G; ++p) {
      __m256 acc[M][G];
      for (int i = 0; i < M; ++i)
        for (int g = 0; g < G; ++g) acc[i][g] = _mm256_setzero_ps();
      for (int64_t k = 0; k < main_end; k += 8 * kLanes)
        for (int g = 0; g < G; ++g) {
          const int64_t at = k + 8 * (p * G + g);
          const __m256 wv = kF16 ? load_f16(row + at) : load_bf16(row + at);
          for (int i = 0; i < M; ++i)
            acc[i][g] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * K + at), wv, acc[i][g]);
        }
      if (p == 0)
        for (int64_t k = main_end; k + 8 <= K; k += 8) {
          const __m256 wv = kF16 ? load_f16(row + k) : load_bf16(row + k);
          for (int i = 0; i < M; ++i)
            acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * K + k), wv, acc[i][0]);
        }
      for (int i = 0; i < M; ++i)
        for (int g = 0; g < G; ++g)
          total[i] = p == 0 && g == 0 ? acc[i][0] : _mm256_add_ps(total[i], acc[i][g]);
    }
    const int64_t tail = K / 8 * 8;
    for (int i = 0; i < M; ++i) {
      float sum = sum_lanes(total[i]);
      for (int64_t j = tail; j < K; ++j)
        sum += x[i * K + j] * (kF16 ? f16_to_f32(row[j]) : bf16_to_f32(row[j]));
      y[i * N + n] = sum + (bias ? bias[n] : 0.0f);
    }
  }
}

// INT8 rows: y = s_x s_w sum_k qx qw, exact int32 sums (K / 8 products of at most 127^2 per lane).
template <int M>
void int8_rows(const int8_t* qx, const float* sx, const int8_t* w, const float* sw, int64_t N, int64_t K,
               const float* bias, float* y) {
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    const int8_t* row = w + n * K;
    __m256i acc[M];
    for (int i = 0; i < M; ++i) acc[i] = _mm256_setzero_si256();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k));
      for (int i = 0; i < M; ++i)
        acc[i] = _mm256_add_epi32(
            acc[i], dot32(wv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + i * K + k))));
    }
    for (int i = 0; i < M; ++i) {
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[i]);
      int32_t sum = 0;
      for (int32_t lane : lanes) sum += lane;
      for (int64_t j = k; j < K; ++j) sum += int32_t(qx[i * K + j]) * int32_t(row[j]);
      y[i * N + n] = float(sum) * sx[i] * sw[n] + (bias ? bias[n] : 0.0f);
    }
  }
}

// Q8_0 / Q4_0 rows against the Q8_0-quantized input: per block, the int32 dot product scaled by both
// block scales, accumulated in float32 lanes.
template <int M, bool kQ4>
void block_rows(const int8_t* qx, const float* dx, const uint8_t* w, int64_t N, int64_t K, const float* bias,
                float* y) {
  const int64_t blocks = K / kBlockWeights, block_bytes = kQ4 ? 18 : 34, stride = blocks * block_bytes;
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* row = w + n * stride;
    __m256 acc[M];
    for (int i = 0; i < M; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = row + b * block_bytes;
      uint16_t d_bits;
      std::memcpy(&d_bits, block, 2);
      const float d = _cvtsh_ss(d_bits);
      const __m256i wv =
          kQ4 ? unpack_q4(block + 2) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
      for (int i = 0; i < M; ++i) {
        const __m256i xv =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + i * K + b * kBlockWeights));
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot32(wv, xv)), _mm256_set1_ps(d * dx[i * blocks + b]),
                                 acc[i]);
      }
    }
    for (int i = 0; i < M; ++i) y[i * N + n] = sum_lanes(acc[i]) + (bias ? bias[n] : 0.0f);
  }
}

// A kernel per row count 1..kDirectRows, picked from a table.
template <template <int> class Kernel, int... Ms>
constexpr auto by_rows(std::integer_sequence<int, Ms...>) {
  return std::array{&Kernel<Ms + 1>::run...};
}

template <int M>
struct Bf16 {
  static void run(const float* x, const uint16_t* w, int64_t N, int64_t K, const float* b, float* y) {
    half_rows<M, false>(x, w, N, K, b, y);
  }
};
template <int M>
struct F16 {
  static void run(const float* x, const uint16_t* w, int64_t N, int64_t K, const float* b, float* y) {
    half_rows<M, true>(x, w, N, K, b, y);
  }
};
template <int M>
struct Int8 {
  static void run(const int8_t* qx, const float* sx, const int8_t* w, const float* sw, int64_t N, int64_t K,
                  const float* b, float* y) {
    int8_rows<M>(qx, sx, w, sw, N, K, b, y);
  }
};
template <int M>
struct Q8 {
  static void run(const int8_t* qx, const float* dx, const uint8_t* w, int64_t N, int64_t K, const float* b,
                  float* y) {
    block_rows<M, false>(qx, dx, w, N, K, b, y);
  }
};
template <int M>
struct Q4 {
  static void run(const int8_t* qx, const float* dx, const uint8_t* w, int64_t N, int64_t K, const float* b,
                  float* y) {
    block_rows<M, true>(qx, dx, w, N, K, b, y);
  }
};

}  // namespace

void direct_linear(const float* x, const QuantizedInput& qx, int64_t first, int64_t count,
                   const QuantizedWeight& w, const float* bias, float* y) {
  using Rows = std::make_integer_sequence<int, int(kDirectRows)>;
  const int64_t N = w.rows, K = w.cols, m = count - 1;
  const float* xr = x + first * K;
  float* yr = y + first * N;
  switch (w.format) {
    case WeightFormat::BF16: {
      static constexpr auto kernels = by_rows<Bf16>(Rows{});
      kernels[size_t(m)](xr, static_cast<const uint16_t*>(w.data.raw()), N, K, bias, yr);
      return;
    }
    case WeightFormat::F16: {
      static constexpr auto kernels = by_rows<F16>(Rows{});
      kernels[size_t(m)](xr, static_cast<const uint16_t*>(w.data.raw()), N, K, bias, yr);
      return;
    }
    case WeightFormat::Int8: {
      static constexpr auto kernels = by_rows<Int8>(Rows{});
      kernels[size_t(m)](qx.values.data() + first * K, qx.scales.data() + first, w.data.data<int8_t>(),
                         w.scale.f32(), N, K, bias, yr);
      return;
    }
    case WeightFormat::Q8_0:
    case WeightFormat::Q4_0: {
      static constexpr auto q8 = by_rows<Q8>(Rows{});
      static constexpr auto q4 = by_rows<Q4>(Rows{});
      const auto& kernels = w.format == WeightFormat::Q8_0 ? q8 : q4;
      kernels[size_t(m)](qx.values.data() + first * K, qx.scales.data() + first * (K / kBlockWeights),
                         w.data.data<uint8_t>(), N, K, bias, yr);
      return;
    }
  }
}

}  // namespace avx2
#pragma GCC pop_options

QuantizedInput quantize_input(WeightFormat format, const float* x, int64_t m, int64_t K) {
  QuantizedInput q;
  if (format == WeightFormat::BF16 || format == WeightFormat::F16) return q;
  q.values.resize(size_t(m * K));
  if (format == WeightFormat::Int8) {
    q.scales.resize(size_t(m));
    for (int64_t i = 0; i < m; ++i)
      q.scales[size_t(i)] = quantize_group(x + i * K, K, &q.values[size_t(i * K)], false);
    return q;
  }
  const int64_t blocks = K / kBlockWeights;
  q.scales.resize(size_t(m * blocks));
  for (int64_t i = 0; i < m * blocks; ++i)
    q.scales[size_t(i)] =
        quantize_group(x + i * kBlockWeights, kBlockWeights, &q.values[size_t(i * kBlockWeights)], true);
  return q;
}

void direct_linear(const float* x, const QuantizedInput& qx, int64_t first, int64_t count,
                   const QuantizedWeight& w, const float* bias, float* y) {
#ifdef __AVX512F__
  if (w.format == WeightFormat::BF16) {
    using Kernel = void (*)(const float*, const uint16_t*, int64_t, int64_t, const float*, float*);
    static constexpr Kernel kByRows[kDirectRows] = {bf16_rows_512<1>, bf16_rows_512<2>, bf16_rows_512<3>,
                                                    bf16_rows_512<4>, bf16_rows_512<5>, bf16_rows_512<6>,
                                                    bf16_rows_512<7>, bf16_rows_512<8>};
    kByRows[count - 1](x + first * w.cols, static_cast<const uint16_t*>(w.data.raw()), w.rows, w.cols, bias,
                       y + first * w.rows);
    return;
  }
#endif
  if (cpu_has_avx2()) return avx2::direct_linear(x, qx, first, count, w, bias, y);
  reference_rows(x, qx, first, count, w, bias, y);
}

void reference_rows(const float* x, const QuantizedInput& qx, int64_t first, int64_t count,
                    const QuantizedWeight& w, const float* bias, float* y) {
  const int64_t N = w.rows, K = w.cols, blocks = K / kBlockWeights;
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    dequantize_rows(w, n, 1, row.data());
    for (int64_t i = first; i < first + count; ++i) {
      double sum = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double in = x[i * K + k];
        if (w.format == WeightFormat::Int8)
          in = double(qx.values[size_t(i * K + k)]) * qx.scales[size_t(i)];
        else if (is_block_format(w.format))
          in = double(qx.values[size_t(i * K + k)]) * qx.scales[size_t(i * blocks + k / kBlockWeights)];
        sum += in * row[size_t(k)];
      }
      y[i * N + n] = float(sum);
    }
  }
}

const char* direct_isa() {
#ifdef __AVX512F__
  if (cpu_has_avx2()) return "avx2 (bf16: avx512)";
#endif
  return cpu_has_avx2() ? "avx2" : "scalar";
}

}  // namespace tfm::kernels
