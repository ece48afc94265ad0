#include "kernels/cpu/gemm_invariant.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "test_support.h"

namespace tfm::kernels {
namespace {

// float32 products summed over K <= 130 terms of magnitude <= 1, against a double-accumulated reference.
constexpr double kRtol = 1e-5;

std::vector<float> noise(int64_t n, uint32_t seed) { return test::uniform_noise(n, seed); }

// C's M x N elements (leading dimension ldc) against the reference's; the padding past each row untouched.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& c0,
                  int64_t N, int64_t ldc) {
  ASSERT_EQ(got.size(), want.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (int64_t(i) % ldc >= N) {
      ASSERT_EQ(std::memcmp(&got[i], &c0[i], sizeof(float)), 0) << "padding changed at " << i;
      continue;
    }
    ASSERT_FALSE(std::isnan(got[i])) << "at " << i;
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  EXPECT_LE(std::sqrt(err), kRtol * std::sqrt(norm) + 1e-30) << "relative L2 error over C";
}

// op(A)[M,K] op(B)[K,N] into C[M,N], each matrix's rows `pad` elements longer than its width.
struct Problem {
  Problem(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad = 0)
      : ta(ta), tb(tb), M(M), N(N), K(K), lda((ta ? M : K) + pad), ldb((tb ? K : N) + pad), ldc(N + pad) {
    a = noise((ta ? K : M) * lda, 1);
    b = noise((tb ? N : K) * ldb, 2);
    c = noise(M * ldc, 3);
  }

  // gemm_row_invariant() on rows [row, row + rows) of op(A) and columns [col, col + cols) of op(B) into
  // that block of `out`.
  void run_block(int64_t row, int64_t rows, int64_t col, int64_t cols, float alpha, float beta,
                 std::vector<float>& out) const {
    const float* a_rows = a.data() + (ta ? row : row * lda);
    const float* b_cols = b.data() + (tb ? col * ldb : col);
    gemm_row_invariant(ta, tb, rows, cols, K, alpha, a_rows, lda, b_cols, ldb, beta,
                       out.data() + row * ldc + col, ldc);
  }

  void run(int64_t row, int64_t rows, float alpha, float beta, std::vector<float>& out) const {
    run_block(row, rows, 0, N, alpha, beta, out);
  }

  // gemm_row_invariant() against gemm_reference() on copies of `c0` (C's initial value).
  void check(float alpha, float beta, const std::vector<float>& c0) const {
    std::vector<float> got = c0, want = c0;
    run(0, M, alpha, beta, got);
    gemm_reference(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, want.data(), ldc);
    expect_close(got, want, c0, N, ldc);
  }

  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  std::vector<float> a, b, c;
};

TEST(GemmRowInvariant, MatchesReferenceOnOddShapes) {
  const std::vector<float> nan(130 * 131, std::numeric_limits<float>::quiet_NaN());
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : {1, 3, 17, 64, 130})
        for (int64_t N : {1, 3, 17, 64, 130})
          for (int64_t K : {1, 3, 17, 64, 130}) {
            SCOPED_TRACE(::testing::Message() << ta << tb << " " << M << "x" << N << "x" << K);
            Problem p(ta, tb, M, N, K, /*pad=*/M % 2);
            p.check(1, 0, p.c);
            p.check(-0.75f, 0, {nan.begin(), nan.begin() + p.c.size()});  // beta 0 never reads C
            p.check(0.5f, 1, p.c);
          }
}

// got = beta * c0 on C's N columns, c0 in the padding.
void expect_scaled(const std::vector<float>& got, const std::vector<float>& c0, float beta, int64_t N,
                   int64_t ldc) {
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], int64_t(i) % ldc < N ? beta * c0[i] : c0[i]);
}

TEST(GemmRowInvariant, AlphaBetaAndEmptyProducts) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Problem p(ta, tb, 33, 65, 47, 3);
      for (float alpha : {1.f, 0.25f, -2.f})
        for (float beta : {0.f, 1.f, 0.5f, -3.f}) {
          SCOPED_TRACE(::testing::Message() << ta << tb << " alpha " << alpha << " beta " << beta);
          p.check(alpha, beta, p.c);
        }
      for (float beta : {0.f, 2.f}) {  // K = 0 and alpha = 0: C = beta * C
        std::vector<float> got = p.c;
        gemm_row_invariant(ta, tb, p.M, p.N, 0, 1, p.a.data(), p.lda, p.b.data(), p.ldb, beta, got.data(),
                           p.ldc);
        expect_scaled(got, p.c, beta, p.N, p.ldc);
        got = p.c;
        p.run(0, p.M, 0, beta, got);
        expect_scaled(got, p.c, beta, p.N, p.ldc);
      }
    }
}

// Rows [row, row + rows) of a and b, bit for bit.
bool same_rows(const std::vector<float>& a, const std::vector<float>& b, int64_t row, int64_t rows,
               int64_t ldc) {
  return std::memcmp(a.data() + row * ldc, b.data() + row * ldc, size_t(rows * ldc) * sizeof(float)) == 0;
}

// The whole product once; then every row alone, in sub-batches of several sizes at several offsets, and
// the columns in pieces, with 1 and 2 threads: always the same bits.
void expect_rows_independent_of_batch(bool ta, bool tb, int64_t N, int64_t K) {
  Problem p(ta, tb, 64, N, K, /*pad=*/3);
  std::vector<float> whole = p.c;
  p.run(0, p.M, 0.5f, 0.25f, whole);
  const int threads = omp_get_max_threads();
  for (int n : {1, 2}) {
    omp_set_num_threads(n);
    std::vector<float> parts = p.c;
    for (int64_t row = 0; row < p.M; ++row) p.run(row, 1, 0.5f, 0.25f, parts);
    EXPECT_TRUE(same_rows(parts, whole, 0, p.M, p.ldc)) << "rows one at a time, " << n << " threads";
    for (int64_t size : {2, 5, 16, 33})
      for (int64_t row : {int64_t(0), int64_t(1), int64_t(7), p.M - size}) {
        parts = p.c;
        p.run(row, size, 0.5f, 0.25f, parts);
        EXPECT_TRUE(same_rows(parts, whole, row, size, p.ldc))
            << size << " rows from " << row << ", " << n << " threads";
      }
    parts = p.c;
    const std::array<int64_t, 4> widths = {1, 16, 17, 3};
    for (int64_t col = 0, piece = 0, i = 0; col < p.N; col += piece, ++i) {
      piece = std::min(p.N - col, widths[size_t(i) % widths.size()]);
      p.run_block(0, p.M, col, piece, 0.5f, 0.25f, parts);
    }
    EXPECT_TRUE(same_rows(parts, whole, 0, p.M, p.ldc)) << "columns in pieces, " << n << " threads";
  }
  omp_set_num_threads(threads);
}

TEST(GemmRowInvariant, RowsDoNotDependOnTheBatchOrThreads) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [N, K] : {std::pair<int64_t, int64_t>{1024, 256}, {77, 45}, {200, 130}}) {
        SCOPED_TRACE(::testing::Message() << ta << tb << " N " << N << " K " << K);
        expect_rows_independent_of_batch(ta, tb, N, K);
      }
}

// Row 0 of gemm() of 1 and of 17 rows: the same in a RowInvariantGemmScope; outside, oneDNN's differ for
// this shape (so the scope is what makes them equal), and inside a parallel region, where the scope does
// not apply, they differ again. (oneDNN's sgemm of 2 to 15 rows happens to sum in gemm_row_invariant()'s
// order; of 17 rows it does not.)
TEST(GemmRowInvariant, ScopeRoutesGemmOutsideParallelRegions) {
  Problem p(false, true, 17, 1024, 256);
  auto first_row = [&](int64_t rows, bool in_region) {
    std::vector<float> all(size_t(rows * p.ldc));
    auto run = [&] {
      gemm(false, true, rows, p.N, p.K, 1, p.a.data(), p.lda, p.b.data(), p.ldb, 0, all.data(), p.ldc);
    };
    if (in_region) {
#pragma omp parallel num_threads(1)
      run();
    } else {
      run();
    }
    return std::vector<float>(all.begin(), all.begin() + p.N);
  };
  EXPECT_FALSE(row_invariant_gemm());
  EXPECT_NE(first_row(1, false), first_row(p.M, false))
      << "oneDNN agrees on this shape: the test proves nothing";
  {
    RowInvariantGemmScope scope;
    EXPECT_TRUE(row_invariant_gemm());
    EXPECT_EQ(first_row(1, false), first_row(p.M, false));
    EXPECT_NE(first_row(1, true), first_row(p.M, true)) << "inside a parallel region: oneDNN";
    std::vector<float> want = p.c, got = p.c;
    p.run(0, p.M, 1, 0, want);
    gemm(false, true, p.M, p.N, p.K, 1, p.a.data(), p.lda, p.b.data(), p.ldb, 0, got.data(), p.ldc);
    EXPECT_TRUE(same_rows(got, want, 0, p.M, p.ldc)) << "gemm() in the scope is gemm_row_invariant()";
  }
  EXPECT_FALSE(row_invariant_gemm());
}

// Scopes nest, each restoring the mode it found; the mode belongs to the thread that set it.
TEST(GemmRowInvariant, ScopesNestPerThread) {
  RowInvariantGemmScope on;
  {
    RowInvariantGemmScope off(false);
    EXPECT_FALSE(row_invariant_gemm());
    {
      RowInvariantGemmScope again;
      EXPECT_TRUE(row_invariant_gemm());
    }
    EXPECT_FALSE(row_invariant_gemm());
  }
  EXPECT_TRUE(row_invariant_gemm());
  bool other = true;
  std::thread([&] { other = row_invariant_gemm(); }).join();
  EXPECT_FALSE(other);
}

}  // namespace
}  // namespace tfm::kernels
