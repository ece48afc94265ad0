#include "kernels/cpu/activation.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/vector_math.h"

namespace tfm::kernels {

namespace {

constexpr int64_t kParallelMin = 1 << 15;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }
float gelu_erf_slope(float x) {
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}

// The elementwise loops below go through blocks of kBlock so that their exponentials are computed by the
// vectorised exp_shifted (libm's are one call per element).
constexpr int64_t kBlock = 512;

// s[i] = sigmoid(a[i]) = 1 / (1 + e^-a[i]), for n <= kBlock (s may be a).
void sigmoid_block(const float* a, float* s, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) s[i] = -a[i];
  exp_shifted(s, 0.0f, s, n);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) s[i] = 1.0f / (1.0f + s[i]);
}

// GELU's tanh form through the sigmoid: with u = sqrt(2/pi) (x + 0.044715 x^3), 0.5 (1 + tanh u) =
// sigmoid(2u) = s, so gelu = x s, and since 1 - tanh^2 u = 4 s (1 - s),
// d gelu / dx = s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
void gelu_tanh_sigmoid(const float* x, float* s, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) s[i] = 2.0f * kSqrt2OverPi * (x[i] + kGeluCubic * x[i] * x[i] * x[i]);
  sigmoid_block(s, s, n);
}

// Runs body(begin, count, s) over [0, n) in blocks, in parallel for large n; s: a block of scratch.
template <typename Body>
void in_blocks(int64_t n, Body body) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < n; b += kBlock) {
    alignas(64) float s[kBlock];
    body(b, std::min(kBlock, n - b), s);
  }
}

}  // namespace

void gelu_forward(GeluKind kind, const float* x, float* y, int64_t n) {
  if (kind == GeluKind::Erf) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf(x[i]);
    return;
  }
  in_blocks(n, [&](int64_t b, int64_t m, float* s) {
    gelu_tanh_sigmoid(x + b, s, m);
    for (int64_t i = 0; i < m; ++i) y[b + i] = x[b + i] * s[i];
  });
}

void gelu_backward(GeluKind kind, const float* x, const float* dy, float* dx, int64_t n) {
  if (kind == GeluKind::Erf) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * gelu_erf_slope(x[i]);
    return;
  }
  in_blocks(n, [&](int64_t b, int64_t m, float* s) {
    gelu_tanh_sigmoid(x + b, s, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      const float v = x[b + i];
      const float slope =
          s[i] + 2.0f * v * s[i] * (1.0f - s[i]) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
      dx[b + i] += dy[b + i] * slope;
    }
  });
}

// silu(x) = x sigmoid(x); its slope sigmoid(x) (1 + x (1 - sigmoid(x))).
void silu_forward(const float* x, float* y, int64_t n) {
  in_blocks(n, [&](int64_t b, int64_t m, float* s) {
    sigmoid_block(x + b, s, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[b + i] = x[b + i] * s[i];
  });
}

void silu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  in_blocks(n, [&](int64_t b, int64_t m, float* s) {
    sigmoid_block(x + b, s, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) dx[b + i] += dy[b + i] * s[i] * (1.0f + x[b + i] * (1.0f - s[i]));
  });
}

void swiglu_forward(const float* gate, const float* up, float* y, int64_t n) {
  in_blocks(n, [&](int64_t b, int64_t m, float* s) {
    sigmoid_block(gate + b, s, m);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[b + i] = gate[b + i] * s[i] * up[b + i];
  });
}

void swiglu_backward(const float* gate, const float* up, const float* dy, float* dgate, float* dup,
                     int64_t n) {
  in_blocks(n, [&](int64_t b, int64_t m, float* s) {
    sigmoid_block(gate + b, s, m);
    for (int64_t i = 0; i < m; ++i) {
      const float g = gate[b + i], d = dy[b + i];
      if (dgate) dgate[b + i] += d * up[b + i] * s[i] * (1.0f + g * (1.0f - s[i]));
      if (dup) dup[b + i] += d * g * s[i];
    }
  });
}

void mul_forward(const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void mul_backward(const float* a, const float* b, const float* dy, float* da, float* db, int64_t n) {
  if (da) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) da[i] += dy[i] * b[i];
  }
  if (db) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) db[i] += dy[i] * a[i];
  }
}

}  // namespace tfm::kernels
