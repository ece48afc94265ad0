#include "kernels/cpu/vector_math.h"

#include <cmath>

#ifdef __AVX512F__
// GCC 12 reports the _mm512_undefined_ps() inside several intrinsics (max, min, roundscale, scalef,
// cvtps_pd) as uninitialised once they are inlined (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace tfm::kernels {

#ifdef __AVX512F__
namespace {

// exp(x) by Cody and Waite's reduction: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2, ln2 split
// in a high part exact in float and a low correction so r keeps its bits; e^r by its Taylor series to
// degree 7 (truncation below 2^-27 relative on that interval); then 2^n applied with vscalefps, which
// produces subnormals and zero without overflow in between.
__m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-103.0f), hi = _mm512_set1_ps(88.72283f);
  // max/min return their second operand when either is NaN: x second keeps a NaN a NaN.
  const __m512 c = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), c);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512 e = _mm512_scalef_ps(p, n);
  // Below the clamp the true value is under half the smallest subnormal: exactly 0 (ordered compare, so
  // NaN is not zeroed).
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), _mm512_setzero_ps());
}

__mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

}  // namespace

float exp_shifted(const float* x, float shift, float* y, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    _mm512_mask_storeu_ps(y + i, m, e);
    sum = _mm512_mask_add_ps(sum, m, sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

double sum_exp_shifted(const float* x, float shift, int64_t n) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d sum = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s)));
    sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  return _mm512_reduce_add_pd(sum);
}

#else

// exp(v), flushed to 0 below -103 as the vector version is (libm would return subnormals down to -104).
inline float exp_flushed(float v) { return v < -103.0f ? 0.0f : std::exp(v); }

float exp_shifted(const float* x, float shift, float* y, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += y[i] = exp_flushed(x[i] - shift);
  return sum;
}

double sum_exp_shifted(const float* x, float shift, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += exp_flushed(x[i] - shift);
  return sum;
}

#endif

}  // namespace tfm::kernels
