#include "kernels/cpu/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/random.h"
#include "kernels/cpu/activation.h"

namespace tfm::kernels {
namespace {

// Every length from 1 to 40 (whole vectors and tails), values spread over [-110, 10] after the shift:
// within 2 ulp of the float64 exponential where the result is a normal float, exactly 0 below -103, and
// the returned sums equal the sums of the stored values (float) and of the exact values (double).
TEST(VectorMath, ExpMatchesTheFloat64Exponential) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> dist(-100.0f, 20.0f);
  for (int64_t n = 1; n <= 40; ++n) {
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (float& v : x) v = dist(gen);
    x[0] = -120.0f;  // far below the clamp (shift 10 below)
    const float shift = 10.0f;
    const float sum = exp_shifted(x.data(), shift, y.data(), n);
    double want_sum = 0, stored_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double want = std::exp(double(x[size_t(i)] - shift));
      want_sum += want;
      stored_sum += y[size_t(i)];
      if (x[size_t(i)] - shift < -103.0f) {
        EXPECT_EQ(y[size_t(i)], 0.0f) << x[size_t(i)];
      } else if (want >= std::numeric_limits<float>::min()) {
        EXPECT_NEAR(y[size_t(i)], want, 2 * want * std::numeric_limits<float>::epsilon()) << x[size_t(i)];
      } else {
        EXPECT_NEAR(y[size_t(i)], want, std::numeric_limits<float>::denorm_min() * 2) << x[size_t(i)];
      }
    }
    EXPECT_NEAR(sum, stored_sum, 1e-6 * stored_sum);
    EXPECT_NEAR(sum_exp_shifted(x.data(), shift, n), want_sum, 1e-6 * want_sum + 1e-40);
  }
}

TEST(VectorMath, ExpKnownValuesInfinityAndNaN) {
  std::vector<float> x = {0.0f,
                          1.0f,
                          -1.0f,
                          std::log(2.0f),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> y(x.size());
  exp_shifted(x.data(), 0.0f, y.data(), int64_t(x.size()));
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_NEAR(y[1], 2.7182818f, 3e-7);
  EXPECT_NEAR(y[2], 0.36787944f, 5e-8);
  EXPECT_NEAR(y[3], 2.0f, 3e-7);
  EXPECT_EQ(y[4], 0.0f);
  EXPECT_TRUE(std::isnan(y[5]));
  EXPECT_TRUE(std::isnan(sum_exp_shifted(x.data(), 0.0f, int64_t(x.size()))));
}

// The integer keep test decides exactly as uniform_at(seed, i) >= p, including probabilities whose
// threshold p * 2^24 is a whole number (0.25, 0.5) and ones where it is not (0.1, 0.3).
TEST(VectorMath, IntegerDropoutDecisionEqualsTheFloatOne) {
  for (float p : {0.0f, 0.1f, 0.25f, 0.3f, 0.5f, 0.9f}) {
    const uint64_t threshold = keep_threshold(p);
    int64_t kept = 0;
    for (uint64_t i = 0; i < 200000; ++i) {
      const bool want = uniform_at(12345, i) >= p;
      ASSERT_EQ(kept_at(12345, i, threshold), want) << "p " << p << " index " << i;
      kept += want;
    }
    EXPECT_NEAR(double(kept) / 200000, 1.0 - p, 0.01);
  }
}

// The activations computed through the vectorised exponential, over 1,300 values (several blocks of 512
// and a tail, and the parallel path) spanning [-12, 12], against their float64 formulas: GELU's tanh
// form, SiLU and SwiGLU, values and slopes (dx accumulates onto what it held).
TEST(VectorMath, ActivationsMatchTheirFloat64Formulas) {
  const int64_t n = 1300;
  std::vector<float> x(n), up(n), dy(n);
  for (int64_t i = 0; i < n; ++i) {
    x[size_t(i)] = -12.0f + 24.0f * float(i) / float(n - 1);
    up[size_t(i)] = 0.5f + float(i % 7) * 0.25f;
    dy[size_t(i)] = 1.0f - float(i % 5) * 0.3f;
  }
  std::vector<float> y(n), dx(n, 0.5f), dup(n, 0.0f);
  auto close = [](double got, double want, const char* what, double v) {
    EXPECT_NEAR(got, want, 2e-6 * (1.0 + std::abs(want))) << what << " at " << v;
  };
  const double k = std::sqrt(2.0 / M_PI);
  gelu_forward(GeluKind::Tanh, x.data(), y.data(), n);
  gelu_backward(GeluKind::Tanh, x.data(), dy.data(), dx.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[size_t(i)], t = std::tanh(k * (v + 0.044715 * v * v * v));
    close(y[size_t(i)], 0.5 * v * (1 + t), "gelu", v);
    const double slope = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v);
    close(dx[size_t(i)], 0.5 + dy[size_t(i)] * slope, "gelu slope", v);
  }
  std::fill(dx.begin(), dx.end(), 0.0f);
  silu_forward(x.data(), y.data(), n);
  silu_backward(x.data(), dy.data(), dx.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[size_t(i)], sg = 1 / (1 + std::exp(-v));
    close(y[size_t(i)], v * sg, "silu", v);
    close(dx[size_t(i)], dy[size_t(i)] * sg * (1 + v * (1 - sg)), "silu slope", v);
  }
  std::fill(dx.begin(), dx.end(), 0.0f);
  swiglu_forward(x.data(), up.data(), y.data(), n);
  swiglu_backward(x.data(), up.data(), dy.data(), dx.data(), dup.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[size_t(i)], u = up[size_t(i)], d = dy[size_t(i)], sg = 1 / (1 + std::exp(-v));
    close(y[size_t(i)], v * sg * u, "swiglu", v);
    close(dx[size_t(i)], d * u * sg * (1 + v * (1 - sg)), "swiglu d gate", v);
    close(dup[size_t(i)], d * v * sg, "swiglu d up", v);
  }
}

}  // namespace
}  // namespace tfm::kernels
