// The one GEMM entry point. Row-major, float32:
//   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
// op(X) = X or X^T; lda/ldb/ldc are row strides in elements of the matrices as stored.
// Backed by oneDNN, chosen by measurement (BENCHMARKS.md): gemm() calls dnnl_sgemm, which allocates
// nothing per call; gemm_batched() runs one matmul primitive over the batch, cached per shape and thread.
// Threads: OpenMP's, unless called from inside a parallel region, where it runs on the calling thread.
// Thread-safe.
#pragma once

#include <cstdint>

namespace tfm::kernels {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// `batch` independent GEMMs; matrix i starts at A + i*stride_a (likewise B, C).
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                  int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c);

// The straightforward triple loop (double accumulation): the reference the tests compare against.
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace tfm::kernels
