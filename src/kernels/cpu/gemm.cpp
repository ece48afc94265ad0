#include "kernels/cpu/gemm.h"

#include <dnnl.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <dnnl.hpp>
#include <unordered_map>

#include "core/error.h"
#include "kernels/cpu/gemm_invariant.h"
#include "kernels/cpu/scratch.h"
#include "tensor/dtype.h"

namespace tfm::kernels {
namespace {

// Everything a oneDNN matmul primitive is specialised on. `threads` is part of it because oneDNN plans a
// primitive's work split for the threads it sees when building it, while inside a parallel region it runs
// every primitive on the calling thread alone: such calls get a primitive built for one thread.
struct Key {
  int64_t batch, M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c;
  uint32_t alpha, beta;  // bit patterns, so that equal keys hash equally
  int threads;
  bool trans_a, trans_b;
  bool bf16;  // A and B are bfloat16
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 0;
    for (int64_t v :
         {k.batch, k.M, k.N, k.K, k.lda, k.ldb, k.ldc, k.stride_a, k.stride_b, k.stride_c, int64_t(k.alpha),
          int64_t(k.beta), int64_t(k.threads), int64_t(k.trans_a), int64_t(k.trans_b), int64_t(k.bf16)})
      h = (h ^ uint64_t(v)) * 0x100000001b3ull;  // FNV-1a over whole fields
    return h;
  }
};

// op(X) [rows, cols], `batch` of them `stride` apart, over row-major storage with leading dimension ld.
// (Only gemm_batched() builds primitives, and it hands a batch of one to gemm().)
dnnl::memory::desc matrix_desc(int64_t batch, int64_t rows, int64_t cols, bool trans, int64_t ld,
                               int64_t stride, bool bf16 = false) {
  using dims = dnnl::memory::dims;
  dims strides = trans ? dims{1, ld} : dims{ld, 1};
  auto type = bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
  return {{batch, rows, cols}, type, {stride, strides[0], strides[1]}};
}

// A primitive and its memory objects; each call points the memory objects at its operands.
struct Matmul {
  dnnl::matmul primitive;
  dnnl::memory a, b, c;
};

// One cache per thread. oneDNN's default (library-managed) scratchpad does not allow running a primitive
// on another thread than the one that built it, and private memory objects make set_data_handle race-free,
// so there is no lock. Once the shapes of a run repeat, a call allocates nothing here.
class Cache {
 public:
  Matmul& get(const Key& k) {
    auto it = entries_.find(k);
    if (it != entries_.end()) return it->second;
    // Bounded for callers whose shapes never repeat (e.g. a growing sequence length).
    if (entries_.size() >= kMaxEntries) entries_.clear();
    try {
      return entries_.emplace(k, build(k)).first->second;
    } catch (const dnnl::error& e) {
      fail("oneDNN matmul {}x{}x{} (batch {}): {}", k.M, k.N, k.K, k.batch, e.what());
    }
  }

  dnnl::stream& stream() { return stream_; }

 private:
  static constexpr size_t kMaxEntries = 512;

  Matmul build(const Key& k) const {
    auto a = matrix_desc(k.batch, k.M, k.K, k.trans_a, k.lda, k.stride_a, k.bf16);
    auto b = matrix_desc(k.batch, k.K, k.N, k.trans_b, k.ldb, k.stride_b, k.bf16);
    auto c = matrix_desc(k.batch, k.M, k.N, false, k.ldc, k.stride_c);
    dnnl::primitive_attr attr;
    float alpha = std::bit_cast<float>(k.alpha), beta = std::bit_cast<float>(k.beta);
    if (alpha != 1) attr.set_output_scales(0, {alpha});
    // beta 0 writes C without reading it (it may hold NaN garbage); otherwise C += the scaled product.
    if (beta != 0) {
      dnnl::post_ops ops;
      ops.append_sum(beta);
      attr.set_post_ops(ops);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine_);
    return {dnnl::matmul(pd), dnnl::memory(a, engine_, nullptr), dnnl::memory(b, engine_, nullptr),
            dnnl::memory(c, engine_, nullptr)};
  }

  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::unordered_map<Key, Matmul, KeyHash> entries_;
};

// C = beta * C, the whole result when the product is empty (K = 0) or scaled away (alpha = 0).
void scale(int64_t batch, int64_t M, int64_t N, float beta, float* C, int64_t ldc, int64_t stride_c) {
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t r = 0; r < M; ++r) {
      float* row = C + i * stride_c + r * ldc;
      for (int64_t j = 0; j < N; ++j) row[j] = beta == 0 ? 0 : beta * row[j];
    }
}

// The threads a primitive runs on: one inside a parallel region (oneDNN then runs on the calling thread).
int threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// Runs the primitive for `key` on A, B, C (each the first matrix of its batch).
void matmul(const Key& key, const void* A, const void* B, float* C) {
  thread_local Cache cache;
  Matmul& m = cache.get(key);
  m.a.set_data_handle(const_cast<void*>(A));
  m.b.set_data_handle(const_cast<void*>(B));
  m.c.set_data_handle(C);
  // The C API takes the arguments as an array; the C++ execute() builds a std::unordered_map per call.
  dnnl_exec_arg_t args[] = {
      {DNNL_ARG_SRC, m.a.get()}, {DNNL_ARG_WEIGHTS, m.b.get()}, {DNNL_ARG_DST, m.c.get()}};
  dnnl_status_t st = dnnl_primitive_execute(m.primitive.get(), cache.stream().get(), 3, args);
  TFM_CHECK(st == dnnl_success, "oneDNN matmul failed ({})", int(st));
  cache.stream().wait();
}

std::atomic<GemmPrecision> g_precision{GemmPrecision::F32};
thread_local bool t_row_invariant = false;

// The precision of this call (see gemm.h: float32 inside a parallel region). omp_get_level() counts
// inactive regions too: with one thread a kernel's parallel loop is inactive (omp_in_parallel() is
// false there), and its tile products must stay float32 all the same, not reach the packing below,
// whose scratch the kernels' own buffers would share.
GemmPrecision precision_here() {
  return omp_get_level() > 0 ? GemmPrecision::F32 : g_precision.load(std::memory_order_relaxed);
}

// The stored rows x cols matrix X (leading dimension ld) converted row by row (convert(src, dst, cols)) and
// packed densely into this thread's scratch slot (gemm's own byte slots); its transposition stays as it was.
template <typename T, typename Convert>
const T* packed(const float* X, int64_t rows, int64_t cols, int64_t ld, int slot, Convert convert) {
  auto* out = static_cast<T*>(thread_scratch_bytes(size_t(rows * cols) * sizeof(T), slot));
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && rows * cols >= (1 << 16))
  for (int64_t r = 0; r < rows; ++r) convert(X + r * ld, out + r * cols, cols);
  return out;
}

// X rounded to bfloat16 (oneDNN's bfloat16 matmul reads both transpositions).
const uint16_t* packed_bf16(const float* X, int64_t rows, int64_t cols, int64_t ld, int slot) {
  return packed<uint16_t>(X, rows, cols, ld, slot, [](const float* src, uint16_t* dst, int64_t n) {
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) dst[c] = to_bf16(src[c]);
  });
}

// Whether oneDNN has a bfloat16 matmul on this CPU: AVX-512 cores and later do, AVX2-only ones do not.
bool has_bf16_matmul() {
  static const bool has = [] {
    try {
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      const dnnl::memory::dims dims = {16, 16};
      const dnnl::memory::desc ab(dims, dnnl::memory::data_type::bf16, dnnl::memory::format_tag::ab);
      const dnnl::memory::desc c(dims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(ab, ab, c), engine);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return has;
}

// X rounded to bfloat16 values, kept as floats (for CPUs without oneDNN's bfloat16 matmul).
const float* packed_bf16_values(const float* X, int64_t rows, int64_t cols, int64_t ld, int slot) {
  return packed<float>(X, rows, cols, ld, slot, [](const float* src, float* dst, int64_t n) {
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) dst[c] = bf16_to_f32(to_bf16(src[c]));
  });
}

// C = alpha A B + beta C for packed float operands: one float32 sgemm.
void sgemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                  int64_t a_cols, const float* b, int64_t b_cols, float beta, float* C, int64_t ldc) {
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, a, a_cols, b,
                                b_cols, beta, C, ldc);
  TFM_CHECK(st == dnnl_success, "dnnl_sgemm failed ({})", int(st));
}

// gemm() in bfloat16: both operands packed, then one oneDNN matmul, a batch of one with dense batch
// strides (a batch stride of 0 makes oneDNN see an unusual layout and fall back to its reference loops).
// Without a bfloat16 matmul, the operands rounded to bfloat16 and a float32 product: the same products
// (exact in float32), summed in float32 as well.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  const int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  if (!has_bf16_matmul()) {
    const float* a = packed_bf16_values(A, a_rows, a_cols, lda, 0);
    const float* b = packed_bf16_values(B, b_rows, b_cols, ldb, 1);
    return sgemm_packed(trans_a, trans_b, M, N, K, alpha, a, a_cols, b, b_cols, beta, C, ldc);
  }
  const uint16_t* a = packed_bf16(A, a_rows, a_cols, lda, 0);
  const uint16_t* b = packed_bf16(B, b_rows, b_cols, ldb, 1);
  matmul(Key{1, M, N, K, a_cols, b_cols, ldc, M * K, K * N, M * ldc, std::bit_cast<uint32_t>(alpha),
             std::bit_cast<uint32_t>(beta), threads(), trans_a, trans_b, true},
         a, b, C);
}

// X rounded to binary16 values, kept as floats.
const float* packed_f16(const float* X, int64_t rows, int64_t cols, int64_t ld, int slot) {
  return packed<float>(X, rows, cols, ld, slot, [](const float* src, float* dst, int64_t n) {
    int64_t c = 0;
#ifdef __F16C__
    // vcvtps2ph rounds to nearest even and overflows to infinity, as IEEE conversion does.
    for (; c + 8 <= n; c += 8) {
      const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + c), _MM_FROUND_TO_NEAREST_INT);
      _mm256_storeu_ps(dst + c, _mm256_cvtph_ps(h));
    }
#endif
    for (; c < n; ++c) dst[c] = round_to_f16(src[c]);
  });
}

// gemm() in emulated half precision: both operands rounded and packed, then a float32 product.
void gemm_f16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  const float* a = packed_f16(A, trans_a ? K : M, a_cols, lda, 0);
  const float* b = packed_f16(B, trans_b ? N : K, b_cols, ldb, 1);
  sgemm_packed(trans_a, trans_b, M, N, K, alpha, a, a_cols, b, b_cols, beta, C, ldc);
}

}  // namespace

float round_to_f16(float x) { return f16_to_f32(f32_to_f16(x)); }

void set_gemm_precision(GemmPrecision precision) { g_precision.store(precision); }
GemmPrecision gemm_precision() { return g_precision.load(); }

bool row_invariant_gemm() { return t_row_invariant; }

RowInvariantGemmScope::RowInvariantGemmScope(bool on) : previous_(t_row_invariant) { t_row_invariant = on; }
RowInvariantGemmScope::~RowInvariantGemmScope() { t_row_invariant = previous_; }

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0) return scale(1, M, N, beta, C, ldc, 0);
  const GemmPrecision precision = precision_here();
  if (precision == GemmPrecision::BF16)
    return gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (precision == GemmPrecision::F16)
    return gemm_f16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Row-invariant mode covers calls outside every parallel region, inactive ones included (as
  // precision_here() does): with one thread the attention kernels' regions are inactive, and their tile
  // products must take the same path as with several.
  if (t_row_invariant && omp_get_level() == 0)
    return gemm_row_invariant(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // dnnl_sgemm, not a cached matmul primitive: executing a primitive allocates inside oneDNN on every
  // call, and a training step must not allocate in steady state (BENCHMARKS.md has both measured).
  dnnl_status_t st =
      dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  TFM_CHECK(st == dnnl_success, "dnnl_sgemm failed ({})", int(st));
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                  int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch == 1) return gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (batch == 0 || M == 0 || N == 0) return;
  if (K == 0 || alpha == 0) return scale(batch, M, N, beta, C, ldc, stride_c);
  if (precision_here() != GemmPrecision::F32) {
    for (int64_t i = 0; i < batch; ++i)
      gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
           C + i * stride_c, ldc);
    return;
  }
  matmul(Key{batch, M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c, std::bit_cast<uint32_t>(alpha),
             std::bit_cast<uint32_t>(beta), threads(), trans_a, trans_b, false},
         A, B, C);
}

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      C[i * ldc + j] = float(alpha * acc + (beta == 0 ? 0.0 : beta * double(C[i * ldc + j])));
    }
}

}  // namespace tfm::kernels
