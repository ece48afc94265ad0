#include "kernels/cpu/activation.h"

#include <cmath>

namespace tfm::kernels {

namespace {

constexpr int64_t kParallelMin = 1 << 15;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

float gelu(GeluKind kind, float x) {
  if (kind == GeluKind::Erf) return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
}

// d gelu / dx.
float gelu_slope(GeluKind kind, float x) {
  if (kind == GeluKind::Erf)
    return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
  float t = std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
}

// silu(x) and its slope sigmoid(x) (1 + x (1 - sigmoid(x))).
float silu(float x) { return x * sigmoid(x); }
float silu_slope(float x) {
  float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

}  // namespace

void gelu_forward(GeluKind kind, const float* x, float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = gelu(kind, x[i]);
}

void gelu_backward(GeluKind kind, const float* x, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * gelu_slope(kind, x[i]);
}

void silu_forward(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = silu(x[i]);
}

void silu_backward(const float* x, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * silu_slope(x[i]);
}

void swiglu_forward(const float* gate, const float* up, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = silu(gate[i]) * up[i];
}

void swiglu_backward(const float* gate, const float* up, const float* dy, float* dgate, float* dup,
                     int64_t n) {
  if (dgate) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dgate[i] += dy[i] * up[i] * silu_slope(gate[i]);
  }
  if (dup) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) dup[i] += dy[i] * silu(gate[i]);
  }
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
