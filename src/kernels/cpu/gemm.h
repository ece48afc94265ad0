// The one GEMM entry point. Row-major, float32:
//   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
// op(X) = X or X^T; lda/ldb/ldc are row strides in elements of the matrices as stored.
// Backed by oneDNN, chosen by measurement (BENCHMARKS.md): gemm() calls dnnl_sgemm, which allocates
// nothing per call; gemm_batched() runs one matmul primitive over the batch, cached per shape and thread.
// Threads: OpenMP's, unless called from inside a parallel region, where it runs on the calling thread.
// Thread-safe.
// Row invariance: oneDNN's result for one row of C depends in its last bits on M (its kernels and blocking
// change with it), so a row computed alone differs from the same row computed among others. A thread in a
// RowInvariantGemmScope gets rows that do not: its float32 gemm() calls from outside any parallel region
// go to gemm_row_invariant() (gemm_invariant.h), whose every element is computed the same way whatever the
// other rows. Calls inside a parallel region (the attention kernels' per-tile products, each row already
// computed independently of the others' requests) keep oneDNN, so that which thread runs a tile, and
// whether that thread is in the mode, never matters. So do the other precisions and gemm_batched() of more
// than one matrix.
#pragma once

#include <bit>
#include <cstdint>

namespace tfm::kernels {

// The precision of the products gemm() and gemm_batched() compute, for the whole process: F32, or BF16
// (mixed precision: op(A) and op(B) rounded to bfloat16, nearest even, and multiplied by oneDNN's
// AVX512-BF16 kernels with float32 accumulation; C stays float32). Calls from inside a parallel region,
// active or not (the attention kernels' per-tile products, each on one thread) stay float32: for such small
// products the conversion costs more than it saves. F16 is IEEE half precision's numerics emulated: op(A) and
// op(B) rounded to binary16 (nearest even; beyond +-65504 to +-infinity, below 2^-24 to zero) and
// multiplied in float32. This CPU has no FP16 arithmetic (no AVX512-FP16) and oneDNN 2.6 no FP16 matmul
// for it, so F16 is never faster than F32: it exists to train with FP16's range, the reason for loss
// scaling (train/loss_scaler.h). gemm_reference() is always float64.
enum class GemmPrecision { F32, BF16, F16 };
void set_gemm_precision(GemmPrecision precision);
GemmPrecision gemm_precision();

// Sets the precision until the end of a scope, then restores the previous one.
class GemmPrecisionScope {
 public:
  explicit GemmPrecisionScope(GemmPrecision precision) : previous_(gemm_precision()) {
    set_gemm_precision(precision);
  }
  ~GemmPrecisionScope() { set_gemm_precision(previous_); }
  GemmPrecisionScope(const GemmPrecisionScope&) = delete;
  GemmPrecisionScope& operator=(const GemmPrecisionScope&) = delete;

 private:
  GemmPrecision previous_;
};

// Whether the calling thread is in row-invariant mode (see above): off unless in a RowInvariantGemmScope.
bool row_invariant_gemm();

// Puts the calling thread in row-invariant mode (or out of it) until the end of a scope, then restores the
// previous mode.
class RowInvariantGemmScope {
 public:
  explicit RowInvariantGemmScope(bool on = true);
  ~RowInvariantGemmScope();
  RowInvariantGemmScope(const RowInvariantGemmScope&) = delete;
  RowInvariantGemmScope& operator=(const RowInvariantGemmScope&) = delete;

 private:
  bool previous_;
};

// x rounded to the nearest bfloat16 (ties to even), as its 16 bits.
inline uint16_t to_bf16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// x rounded to the nearest IEEE binary16 value, returned as a float (overflow gives +-infinity).
float round_to_f16(float x);

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
