#include "kernels/cpu/gemm.h"

#include "tensor/dtype.h"
#include "test_support.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace tfm::kernels {
namespace {

// float32 products summed over K <= 257 terms of magnitude <= 1, against a double-accumulated reference.
constexpr double kRtol = 1e-5;

std::vector<float> noise(int64_t n, uint32_t seed) { return test::uniform_noise(n, seed); }

// One problem: op(A)[M,K] op(B)[K,N] into C[M,N], each matrix stored `pad` elements past its row length
// inside a larger buffer and starting `pad` elements in, so leading dimensions differ from the widths.
struct Problem {
  Problem(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad = 0)
      : ta(ta), tb(tb), M(M), N(N), K(K), pad(pad) {
    lda = (ta ? M : K) + pad;
    ldb = (tb ? K : N) + pad;
    ldc = N + pad;
    a = noise(pad + (ta ? K : M) * lda, 1);
    b = noise(pad + (tb ? N : K) * ldb, 2);
    c = noise(pad + M * ldc, 3);
  }

  // gemm() and gemm_reference() on copies of C; expects the same C, padding included.
  void check(float alpha, float beta) const {
    std::vector<float> got = c, want = c;
    gemm(ta, tb, M, N, K, alpha, a.data() + pad, lda, b.data() + pad, ldb, beta, got.data() + pad, ldc);
    gemm_reference(ta, tb, M, N, K, alpha, a.data() + pad, lda, b.data() + pad, ldb, beta, want.data() + pad,
                   ldc);
    expect_close(got, want);
  }

  static void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
    ASSERT_EQ(got.size(), want.size());
    double err = 0, norm = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_FALSE(std::isnan(got[i])) << "at " << i;
      err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
      norm += double(want[i]) * want[i];
    }
    EXPECT_LE(std::sqrt(err), kRtol * std::sqrt(norm) + 1e-30) << "relative L2 error over C";
  }

  bool ta, tb;
  int64_t M, N, K, pad, lda, ldb, ldc;
  std::vector<float> a, b, c;
};

TEST(Gemm, AllTransposesOddSizes) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : {1, 7, 33, 257})
        for (int64_t N : {1, 7, 33, 257})
          for (int64_t K : {1, 7, 33, 257}) {
            SCOPED_TRACE(::testing::Message() << ta << tb << " " << M << "x" << N << "x" << K);
            Problem(ta, tb, M, N, K).check(1, 0);
          }
}

TEST(Gemm, SubMatricesWithLeadingDimensions) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t pad : {1, 5, 64}) {
        SCOPED_TRACE(::testing::Message() << ta << tb << " pad " << pad);
        Problem(ta, tb, 33, 7, 257, pad).check(1, 0);
        Problem(ta, tb, 257, 33, 7, pad).check(-0.5f, 1);
      }
}

TEST(Gemm, AlphaBeta) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Problem p(ta, tb, 33, 65, 17, 3);
      for (float alpha : {1.f, 0.25f, -2.f})
        for (float beta : {0.f, 1.f, 0.5f, -3.f}) {
          SCOPED_TRACE(::testing::Message() << ta << tb << " alpha " << alpha << " beta " << beta);
          p.check(alpha, beta);
        }
    }
}

TEST(Gemm, BetaZeroIgnoresNanInC) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Problem p(ta, tb, 33, 7, 20);
      std::fill(p.c.begin(), p.c.end(), std::numeric_limits<float>::quiet_NaN());
      std::vector<float> got = p.c, want(p.c.size());
      gemm(ta, tb, p.M, p.N, p.K, 1.5f, p.a.data(), p.lda, p.b.data(), p.ldb, 0, got.data(), p.ldc);
      gemm_reference(ta, tb, p.M, p.N, p.K, 1.5f, p.a.data(), p.lda, p.b.data(), p.ldb, 0, want.data(),
                     p.ldc);
      Problem::expect_close(got, want);
    }
}

TEST(Gemm, BetaOneAccumulates) {
  Problem p(true, false, 64, 48, 32);
  std::vector<float> c(p.c.size(), 0), want(p.c.size(), 0);
  for (int step = 0; step < 3; ++step) {
    gemm(p.ta, p.tb, p.M, p.N, p.K, 1, p.a.data(), p.lda, p.b.data(), p.ldb, 1, c.data(), p.ldc);
    gemm_reference(p.ta, p.tb, p.M, p.N, p.K, 1, p.a.data(), p.lda, p.b.data(), p.ldb, 1, want.data(), p.ldc);
  }
  Problem::expect_close(c, want);
}

TEST(Gemm, EmptyInnerDimensionScalesC) {
  std::vector<float> a(1), b(1);
  for (float beta : {0.f, 1.f, 2.f})
    for (int64_t batch : {1, 2}) {  // 3x4 matrices with ldc 5, 16 apart
      std::vector<float> c = noise(32, 4), want = c;
      if (beta == 0) std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
      gemm_batched(batch, false, false, 3, 4, 0, 1, a.data(), 1, 0, b.data(), 4, 0, beta, c.data(), 5, 16);
      for (int64_t i = 0; i < batch; ++i)
        for (int64_t r = 0; r < 3; ++r)
          for (int64_t j = 0; j < 4; ++j) {
            int64_t at = i * 16 + r * 5 + j;
            EXPECT_EQ(c[at], beta * want[at]) << "beta " << beta << " batch " << batch << " at " << at;
          }
    }
}

TEST(Gemm, EmptyOutputIsANoOp) {
  float x = 1;
  gemm(false, false, 0, 5, 3, 1, &x, 3, &x, 5, 0, &x, 5);
  gemm(false, false, 5, 0, 3, 1, &x, 3, &x, 1, 0, &x, 1);
  EXPECT_EQ(x, 1);
}

// The same shapes again on other buffers (the cache hits) and with other thread counts.
TEST(Gemm, RepeatsAcrossBuffersAndThreadCounts) {
  const int threads = omp_get_max_threads();
  for (int n : {1, 2, threads})
    for (uint32_t seed = 0; seed < 3; ++seed) {
      omp_set_num_threads(n);
      Problem p(false, true, 128, 96, 64);
      p.a = noise(p.a.size(), 10 + seed);
      p.check(1, 0);
    }
  omp_set_num_threads(threads);
}

TEST(Gemm, InsideParallelRegion) {
  std::vector<Problem> problems;
  for (int i = 0; i < 8; ++i) problems.emplace_back(i % 2, i / 2 % 2, i < 4 ? 65 : 3, 33 + i % 3, 40, i % 2);
  std::vector<std::vector<float>> got(problems.size());
  for (size_t i = 0; i < problems.size(); ++i) got[i] = problems[i].c;
#pragma omp parallel for num_threads(2) schedule(dynamic)
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    gemm(p.ta, p.tb, p.M, p.N, p.K, 1, p.a.data() + p.pad, p.lda, p.b.data() + p.pad, p.ldb, 0.5f,
         got[i].data() + p.pad, p.ldc);
  }
  for (size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    std::vector<float> want = p.c;
    gemm_reference(p.ta, p.tb, p.M, p.N, p.K, 1, p.a.data() + p.pad, p.lda, p.b.data() + p.pad, p.ldb, 0.5f,
                   want.data() + p.pad, p.ldc);
    Problem::expect_close(got[i], want);
  }
}

// Every thread of the region multiplies the same shape at once, as a per-head loop does.
TEST(Gemm, SameShapeOnEveryThread) {
  Problem p(false, true, 128, 128, 64);
  std::vector<float> want = p.c;
  gemm_reference(p.ta, p.tb, p.M, p.N, p.K, 1, p.a.data(), p.lda, p.b.data(), p.ldb, 0, want.data(), p.ldc);
  std::vector<std::vector<float>> got(16, p.c);
#pragma omp parallel for num_threads(2) schedule(dynamic)
  for (size_t i = 0; i < got.size(); ++i)
    gemm(p.ta, p.tb, p.M, p.N, p.K, 1, p.a.data(), p.lda, p.b.data(), p.ldb, 0, got[i].data(), p.ldc);
  for (const auto& g : got) Problem::expect_close(g, want);
}

// Batched over matrices laid out with gaps between them (strides beyond the matrix sizes) and padded
// leading dimensions; also run from inside a parallel region.
void check_batched(bool ta, bool tb, bool nested) {
  const int64_t batch = 5, M = 33, N = 17, K = 9, pad = 2, gap = 7;
  const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const int64_t sa = (ta ? K : M) * lda + gap, sb = (tb ? N : K) * ldb + gap, sc = M * ldc + gap;
  std::vector<float> a = noise(batch * sa, 5), b = noise(batch * sb, 6), c = noise(batch * sc, 7);
  std::vector<float> got = c, want = c;
  auto run = [&] {
    gemm_batched(batch, ta, tb, M, N, K, 0.5f, a.data(), lda, sa, b.data(), ldb, sb, 1, got.data(), ldc, sc);
  };
  if (nested) {
#pragma omp parallel num_threads(2)
#pragma omp single
    run();
  } else {
    run();
  }
  for (int64_t i = 0; i < batch; ++i)
    gemm_reference(ta, tb, M, N, K, 0.5f, a.data() + i * sa, lda, b.data() + i * sb, ldb, 1,
                   want.data() + i * sc, ldc);
  Problem::expect_close(got, want);
}

TEST(GemmBatched, StridedAllTransposes) {
  for (bool nested : {false, true})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        SCOPED_TRACE(::testing::Message() << ta << tb << (nested ? " nested" : ""));
        check_batched(ta, tb, nested);
      }
}

// Stride 0 reuses one matrix for the whole batch (here B, as weights shared by every sequence).
TEST(GemmBatched, ZeroStrideBroadcasts) {
  const int64_t batch = 4, M = 16, N = 8, K = 5;
  std::vector<float> a = noise(batch * M * K, 8), b = noise(K * N, 9), got(batch * M * N),
                     want(batch * M * N);
  gemm_batched(batch, false, false, M, N, K, 1, a.data(), K, M * K, b.data(), N, 0, 0, got.data(), N, M * N);
  for (int64_t i = 0; i < batch; ++i)
    gemm_reference(false, false, M, N, K, 1, a.data() + i * M * K, K, b.data(), N, 0, want.data() + i * M * N,
                   N);
  Problem::expect_close(got, want);
}

}  // namespace
}  // namespace tfm::kernels

namespace tfm::kernels {
namespace {

float from_bf16(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

TEST(GemmBf16, RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1); 1 + 3 * 2^-8 lies
  // halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f), 0x3F80);
  EXPECT_EQ(to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);  // just above the tie: up
  EXPECT_EQ(to_bf16(-2.5f), 0xC020);
  EXPECT_TRUE(std::isinf(from_bf16(to_bf16(std::numeric_limits<float>::infinity()))));
}

// In a reduced-precision mode gemm() equals the float64 product of the operands rounded by `round` (the
// rounding is the only loss: accumulation is float32), for every transposition, with leading dimensions,
// alpha and beta; and it differs from the float32 product by more than `visible`, so the mode is really on.
void expect_product_of_rounded_operands(GemmPrecision precision, float (*round)(float), double visible) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : {1, 33, 130})
        for (int64_t K : {7, 257}) {
          const int64_t N = 65;
          SCOPED_TRACE(::testing::Message() << ta << tb << " " << M << "x" << N << "x" << K);
          Problem p(ta, tb, M, N, K, /*pad=*/3);
          Problem rounded = p;
          for (float& x : rounded.a) x = round(x);
          for (float& x : rounded.b) x = round(x);
          std::vector<float> got = p.c, want = p.c, f32 = p.c;
          {
            GemmPrecisionScope scope(precision);
            gemm(ta, tb, M, N, K, 0.5f, p.a.data() + 3, p.lda, p.b.data() + 3, p.ldb, 0.25f, got.data() + 3,
                 p.ldc);
          }
          EXPECT_EQ(gemm_precision(), GemmPrecision::F32);
          gemm_reference(ta, tb, M, N, K, 0.5f, rounded.a.data() + 3, p.lda, rounded.b.data() + 3, p.ldb,
                         0.25f, want.data() + 3, p.ldc);
          Problem::expect_close(got, want);
          gemm(ta, tb, M, N, K, 0.5f, p.a.data() + 3, p.lda, p.b.data() + 3, p.ldb, 0.25f, f32.data() + 3,
               p.ldc);
          double diff = 0;
          for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::abs(double(got[i]) - f32[i]));
          EXPECT_GT(diff, visible) << "the rounding should be visible";
        }
}

TEST(GemmBf16, EqualsTheProductOfRoundedOperands) {
  expect_product_of_rounded_operands(
      GemmPrecision::BF16, [](float x) { return from_bf16(to_bf16(x)); }, 1e-4);
}

TEST(GemmBf16, BatchedAndFloat32InsideParallelRegions) {
  const int64_t batch = 3, M = 20, N = 24, K = 40;
  std::vector<float> a = noise(batch * M * K, 4), b = noise(batch * K * N, 5);
  std::vector<float> got(size_t(batch * M * N)), want(got.size());
  std::vector<float> ra = a, rb = b;
  for (float& x : ra) x = from_bf16(to_bf16(x));
  for (float& x : rb) x = from_bf16(to_bf16(x));
  GemmPrecisionScope bf16(GemmPrecision::BF16);
  gemm_batched(batch, false, false, M, N, K, 1.0f, a.data(), K, M * K, b.data(), N, K * N, 0.0f, got.data(),
               N, M * N);
  for (int64_t i = 0; i < batch; ++i)
    gemm_reference(false, false, M, N, K, 1.0f, ra.data() + i * M * K, K, rb.data() + i * K * N, N, 0.0f,
                   want.data() + i * M * N, N);
  Problem::expect_close(got, want);
  // Inside a parallel region the products stay float32, in every reduced precision, also in a region of
  // one thread (an inactive region: a training run with threads = 1).
  std::vector<float> f32(got.size());
  for (int64_t i = 0; i < batch; ++i)
    gemm_reference(false, false, M, N, K, 1.0f, a.data() + i * M * K, K, b.data() + i * K * N, N, 0.0f,
                   f32.data() + i * M * N, N);
  for (GemmPrecision precision : {GemmPrecision::BF16, GemmPrecision::F16})
    for (int threads : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << int(precision) << ", " << threads << " threads");
      GemmPrecisionScope scope(precision);
      std::vector<float> par(got.size());
#pragma omp parallel for num_threads(threads)
      for (int64_t i = 0; i < batch; ++i)
        gemm(false, false, M, N, K, 1.0f, a.data() + i * M * K, K, b.data() + i * K * N, N, 0.0f,
             par.data() + i * M * N, N);
      Problem::expect_close(par, f32);
    }
}

}  // namespace
}  // namespace tfm::kernels

namespace tfm::kernels {
namespace {

// F16 mode: the product of the operands rounded to binary16, checked against the portable conversion in
// tensor/dtype.h (gemm() converts with F16C).
TEST(GemmF16, EqualsTheProductOfOperandsRoundedToHalfPrecision) {
  expect_product_of_rounded_operands(
      GemmPrecision::F16, [](float x) { return f16_to_f32(f32_to_f16(x)); }, 1e-6);
}

// binary16's range: an operand beyond 65504 becomes infinity and one below half the smallest subnormal
// (2^-25) zero.
TEST(GemmF16, OverflowsToInfinityAndFlushesTinyValues) {
  EXPECT_EQ(round_to_f16(65504.0f), 65504.0f);
  EXPECT_TRUE(std::isinf(round_to_f16(65520.0f)));  // halfway to the next binade: rounds up, overflows
  EXPECT_EQ(round_to_f16(0x1p-24f), 0x1p-24f);      // the smallest subnormal
  EXPECT_EQ(round_to_f16(0x1p-26f), 0.0f);
  // 1 x 16 by 16 x 1: the same through gemm(), whose rounding is vectorised (groups of 8).
  std::vector<float> a(16, 1.0f), b(16, 0.0f);
  float c = 0;
  b[3] = 70000.0f;
  GemmPrecisionScope half(GemmPrecision::F16);
  gemm(false, false, 1, 1, 16, 1.0f, a.data(), 16, b.data(), 1, 0.0f, &c, 1);
  EXPECT_TRUE(std::isinf(c));
  b[3] = 0x1p-26f;
  gemm(false, false, 1, 1, 16, 1.0f, a.data(), 16, b.data(), 1, 0.0f, &c, 1);
  EXPECT_EQ(c, 0.0f);
}

}  // namespace
}  // namespace tfm::kernels
