// A row-invariant GEMM: gemm()'s contract (row-major, float32, C[M,N] = alpha * op(A) op(B) + beta * C,
// op(X) = X or X^T, leading dimensions in elements; beta = 0 writes C without reading it), computed so that
// every element C[m][n] comes from a sequence of floating-point operations that depends only on K, row m
// of op(A), column n of op(B), alpha, beta and C[m][n]: never on M, on the other rows in the call, on the
// thread count or on how the work is split between threads. A row of the result is therefore bit-identical
// whether it is computed alone (M = 1) or with any other rows, which oneDNN's sgemm does not promise (its
// kernels and blocking change with M). gemm() routes here inside a RowInvariantGemmScope (gemm.h).
//
// Speed: C = A B^T (trans_a false, trans_b true: a linear layer's forward pass) and C = A B (both false)
// have AVX-512 kernels; trans_a = true is a plain loop (correct, not fast). B is read as stored, never
// packed. Threads: OpenMP's, unless called from inside a parallel region, where it runs on the calling
// thread. Thread-safe.
#pragma once

#include <cstdint>

namespace tfm::kernels {

void gemm_row_invariant(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc);

}  // namespace tfm::kernels
