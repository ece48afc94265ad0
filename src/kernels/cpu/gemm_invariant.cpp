#include "kernels/cpu/gemm_invariant.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "kernels/cpu/scratch.h"

#ifdef __AVX512F__
// GCC 12 reports the _mm512_undefined_ps() inside several intrinsics (here the shuffles) as uninitialised
// once they are inlined (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

// Why each element's arithmetic is fixed. The work is cut into tiles of C, tiles into blocks, and only the
// schedule (which thread, which tile, which block shape) depends on M, N and the thread count. What an
// element's value is made of never does:
//  - C = A B^T (AVX-512): the element's dot product accumulates in one 16-lane vector, lane l summing
//    a[k] b[k] over k = l, l + 16, l + 32, ... in increasing k, one fused multiply-add each (the last,
//    partial group of 16 loaded with zeros in the missing lanes); then its 16 lanes are added by one fixed
//    tree (reduce()). Every block shape, 4 x 4 down to 1 x 1, runs this same sequence for each of its
//    elements: a block only decides how many such vectors are in flight at once, and the reduction's
//    shuffles only move lanes, never combining two elements' values.
//  - C = A B (AVX-512) and every other case: one chain of fused multiply-adds acc = fma(a[k], b[k], acc)
//    from acc = 0, k = 0, 1, ..., K-1, whether on a lane of a vector or on a scalar (C = A B goes over K
//    in passes, each element's acc kept exactly in between).
// Then alpha and beta, by finish()'s operations in every path. No cache or packed copy is kept between calls,
// and a tile is computed by exactly one thread, so nothing else in the call can reach an element's value.
namespace tfm::kernels {
namespace {

// One call's operands, as gemm_row_invariant() receives them.
struct Gemm {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
};

// Rows [i0, i1) x columns [j0, j1) of C, computed by one thread.
struct Tile {
  int64_t i0, i1, j0, j1;
};

constexpr int64_t kTileCols = 64;
// The rows of A a tile reads (tile rows x K floats) stay in L2 while its columns stream past them.
constexpr int64_t kTileBytesOfA = 512 << 10;
// Below this many multiply-adds one thread is faster than waking the others.
constexpr int64_t kParallelWork = 1 << 18;

// The element from its product `dot`: alpha * dot when beta is 0 (C is not read: it may hold garbage),
// otherwise fma(alpha, dot, beta * c). The vector paths apply the same two operations lane by lane.
float finish(float dot, float alpha, float beta, const float* c) {
  return beta == 0 ? alpha * dot : std::fma(alpha, dot, beta * *c);
}

// Rows per tile: at most what fits kTileBytesOfA (a multiple of 4, the blocks' height), spread evenly
// over as few tiles as that allows.
int64_t tile_rows(int64_t M, int64_t K) {
  const int64_t most = std::max<int64_t>(4, kTileBytesOfA / (K * int64_t(sizeof(float))) / 4 * 4);
  const int64_t tiles = (M + most - 1) / most;
  return std::min(M, ((M + tiles - 1) / tiles + 3) / 4 * 4);
}

// fn(g, tile) over all tiles of C, shared among OpenMP's threads unless inside a parallel region (active
// or not) or the product is small. Consecutive tiles share their rows of A: the static schedule gives
// each thread one run of them.
void for_each_tile(const Gemm& g, void (*fn)(const Gemm&, Tile)) {
  const int64_t mc = tile_rows(g.M, g.K), rows = (g.M + mc - 1) / mc,
                cols = (g.N + kTileCols - 1) / kTileCols;
  auto tile = [&](int64_t t) {
    const int64_t i0 = t / cols * mc, j0 = t % cols * kTileCols;
    fn(g, Tile{i0, std::min(i0 + mc, g.M), j0, std::min(j0 + kTileCols, g.N)});
  };
  // Not even an inactive region for small products: entering one costs as much as a small product.
  if (omp_get_level() > 0 || g.M * g.N * g.K < kParallelWork) {
    for (int64_t t = 0; t < rows * cols; ++t) tile(t);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < rows * cols; ++t) tile(t);
}

// op(A)[m, :] op(B)[:, n] as one chain of fused multiply-adds over k = 0, 1, ..., K-1.
float dot_in_order(const float* a, int64_t a_step, const float* b, int64_t b_step, int64_t K) {
  float acc = 0;
  for (int64_t k = 0; k < K; ++k) acc = std::fma(a[k * a_step], b[k * b_step], acc);
  return acc;
}

void scalar_tile(const Gemm& g, Tile t) {
  const int64_t a_step = g.trans_a ? g.lda : 1, b_step = g.trans_b ? 1 : g.ldb;
  for (int64_t i = t.i0; i < t.i1; ++i)
    for (int64_t j = t.j0; j < t.j1; ++j) {
      const float* a = g.trans_a ? g.A + i : g.A + i * g.lda;
      const float* b = g.trans_b ? g.B + j * g.ldb : g.B + j;
      float* c = g.C + i * g.ldc + j;
      *c = finish(dot_in_order(a, a_step, b, b_step, g.K), g.alpha, g.beta, c);
    }
}

#ifdef __AVX512F__
constexpr int kLanes = 16;
// The rows of A that C = A B^T keeps in L1 (of 48 KiB) at once.
constexpr int64_t kL1BytesOfA = 32 << 10;

// alpha * dot + beta * C on the lanes of `mask` of the row at c, by finish()'s operations.
void store_row(__m512 dot, float alpha, float beta, __mmask16 mask, float* c) {
  const __m512 scaled = _mm512_mul_ps(_mm512_set1_ps(alpha), dot);
  if (beta == 0) return _mm512_mask_storeu_ps(c, mask, scaled);
  const __m512 old = _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, c));
  _mm512_mask_storeu_ps(c, mask, _mm512_fmadd_ps(_mm512_set1_ps(alpha), dot, old));
}

// The kernels keep their accumulators in arrays of vectors indexed by template arguments: every loop over
// them is unrolled by pragma (GCC 12 unrolls some of them too late to keep such an array in registers).

// One level of reduce(): v[0..N) combined in pairs (v[2p], v[2p+1]; the last one paired with zeros when N
// is odd) by fold(x, y) into v[p].
template <int N, typename Fold>
void fold_pairs(__m512* v, Fold fold) {
#pragma GCC unroll 16
  for (int p = 0; p < (N + 1) / 2; ++p)
    v[p] = fold(v[2 * p], 2 * p + 1 < N ? v[2 * p + 1] : _mm512_setzero_ps());
}

// Where reduce() leaves the sum of acc[s].
constexpr int reduced_lane(int s) { return 4 * (s % 4) + s / 4; }

// The lane sums of up to 16 vectors in one vector (acc[s]'s in lane reduced_lane(s)), by a transposing
// butterfly: each level adds the upper half of every element's partial sums to its lower half, after
// shuffles that put two elements' halves side by side. Every element's 16 lanes x0..x15 are thus added by
// the same tree whatever the other vectors hold: s_j = x_j + x_{j+8}, t_j = s_j + s_{j+4},
// u_j = t_j + t_{j+2}, sum = u_0 + u_1. Overwrites acc.
template <int C>
__m512 reduce(__m512 (&acc)[C]) {
  constexpr int halves = (C + 1) / 2, quarters = (halves + 1) / 2, pairs = (quarters + 1) / 2;
  fold_pairs<C>(acc, [](__m512 x, __m512 y) {  // 256-bit halves
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
  });
  fold_pairs<halves>(acc, [](__m512 x, __m512 y) {  // 128-bit quarters
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
  });
  fold_pairs<quarters>(acc, [](__m512 x, __m512 y) {  // pairs of lanes
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x44), _mm512_shuffle_ps(x, y, 0xEE));
  });
  fold_pairs<pairs>(acc, [](__m512 x, __m512 y) {  // lanes
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x88), _mm512_shuffle_ps(x, y, 0xDD));
  });
  return acc[0];
}

// For each row i of an MR x NR block whose element (i, j) accumulated in acc[i * NR + j]: the lanes of
// reduce()'s result holding that row's NR sums, in order.
template <int MR, int NR>
constexpr std::array<std::array<int32_t, kLanes>, MR> row_lanes() {
  std::array<std::array<int32_t, kLanes>, MR> lanes{};
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) lanes[i][j] = reduced_lane(i * NR + j);
  return lanes;
}

// One step of 16 k's: acc[i * NR + j] += a_i[k..k+16) * b_j[k..k+16), lane by lane, on the lanes of mask
// (the others read as zeros).
template <int MR, int NR>
void nt_step(const float* a, int64_t lda, const float* b, int64_t ldb, __mmask16 mask,
             __m512 (&acc)[MR * NR]) {
  __m512 x[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) x[i] = _mm512_maskz_loadu_ps(mask, a + i * lda);
#pragma GCC unroll 16
  for (int j = 0; j < NR; ++j) {
    const __m512 y = _mm512_maskz_loadu_ps(mask, b + j * ldb);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i * NR + j] = _mm512_fmadd_ps(x[i], y, acc[i * NR + j]);
  }
}

// The MR x NR block of C = A B^T at c from the MR rows of A at a and the NR rows of B at b.
template <int MR, int NR>
[[gnu::flatten]] void nt_block(const float* a, int64_t lda, const float* b, int64_t ldb, const Gemm& g,
                               float* c) {
  static_assert(MR * NR <= kLanes, "one vector of sums per block");
  __m512 acc[MR * NR];
#pragma GCC unroll 16
  for (__m512& v : acc) v = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + kLanes <= g.K; k += kLanes) nt_step<MR, NR>(a + k, lda, b + k, ldb, 0xFFFF, acc);
  if (k < g.K) nt_step<MR, NR>(a + k, lda, b + k, ldb, __mmask16((1u << (g.K - k)) - 1), acc);
  const __m512 sums = reduce(acc);
  static constexpr auto lanes = row_lanes<MR, NR>();
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const __m512 row = _mm512_permutexvar_ps(_mm512_loadu_si512(lanes[i].data()), sums);
    store_row(row, g.alpha, g.beta, __mmask16((1u << NR) - 1), c + i * g.ldc);
  }
}

using NtBlock = void (*)(const float*, int64_t, const float*, int64_t, const Gemm&, float*);

// The block kernel for mr rows of A and nr rows of B (mr * nr <= 16).
NtBlock nt_kernel(int64_t mr, int64_t nr) {
  static constexpr NtBlock by4[] = {nt_block<1, 4>, nt_block<2, 4>, nt_block<3, 4>, nt_block<4, 4>};
  static constexpr NtBlock by1[] = {nt_block<1, 1>, nt_block<2, 1>, nt_block<3, 1>, nt_block<4, 1>};
  if (nr == 16) return nt_block<1, 16>;
  if (nr == 8) return mr == 1 ? nt_block<1, 8> : nt_block<2, 8>;
  return nr == 4 ? by4[mr - 1] : by1[mr - 1];
}

// The height of the next block with `left` rows to go: 4, except 5 = 3 + 2 (blocks of 8 or more
// accumulators keep both FMA pipes busy; a 1-row block has too few).
int64_t block_rows(int64_t left) { return left == 5 ? 3 : std::min<int64_t>(left, 4); }

// A tile of C = A B^T, by groups of its rows of A: as many as fit kL1BytesOfA (all of them when that is
// under 8), which stay in L1 while each block of B's rows, from L2, goes past them. As many rows of B per
// block as 16 accumulators allow, so that even one row of A keeps the FMA pipes busy.
void nt_tile(const Gemm& g, Tile t) {
  const int64_t rows = t.i1 - t.i0, wide = rows == 1 ? 16 : rows == 2 ? 8 : 4;
  const int64_t fit = kL1BytesOfA / (g.K * int64_t(sizeof(float))) / 4 * 4, group = fit >= 8 ? fit : rows;
  for (int64_t i0 = t.i0; i0 < t.i1; i0 += group) {
    const int64_t i1 = std::min(i0 + group, t.i1);
    for (int64_t j = t.j0, nr; j < t.j1; j += nr) {
      nr = t.j1 - j >= wide ? wide : t.j1 - j >= 4 ? 4 : 1;
      for (int64_t i = i0, mr; i < i1; i += mr) {
        mr = block_rows(i1 - i);
        nt_kernel(mr, nr)(g.A + i * g.lda, g.lda, g.B + j * g.ldb, g.ldb, g, g.C + i * g.ldc + j);
      }
    }
  }
}

// Rows [begin, end) of B: one pass of C = A B over a tile. A tile's elements wait between passes in
// `carry`, element (r, col) of the tile at carry[r * kTileCols + col]: stored and reloaded exactly, so
// that every chain of FMAs goes on as if uninterrupted.
struct Pass {
  int64_t begin, end;
  float* carry;
};

// One pass over the MR x (16 NV) block of C = A B at c (its last vector's columns: `last`) from the MR
// rows of A at a and the columns of B at b: every element one chain of FMAs over k, as dot_in_order()
// computes it; the last pass writes C.
template <int MR, int NV>
[[gnu::flatten]] void nn_block(const float* a, const float* b, __mmask16 last, const Gemm& g, float* c,
                               Pass p) {
  auto mask = [last](int s) { return s % NV == NV - 1 ? last : __mmask16(0xFFFF); };
  auto carried = [&p](int s) { return p.carry + s / NV * kTileCols + s % NV * kLanes; };
  __m512 acc[MR * NV];
#pragma GCC unroll 16
  for (int s = 0; s < MR * NV; ++s)
    acc[s] = p.begin == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask(s), carried(s));
  for (int64_t k = p.begin; k < p.end; ++k) {
    __m512 y[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) y[v] = _mm512_maskz_loadu_ps(mask(v), b + k * g.ldb + v * kLanes);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512 x = _mm512_set1_ps(a[i * g.lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i * NV + v] = _mm512_fmadd_ps(x, y[v], acc[i * NV + v]);
    }
  }
#pragma GCC unroll 16
  for (int s = 0; s < MR * NV; ++s) {
    if (p.end < g.K)
      _mm512_mask_storeu_ps(carried(s), mask(s), acc[s]);
    else
      store_row(acc[s], g.alpha, g.beta, mask(s), c + s / NV * g.ldc + s % NV * kLanes);
  }
}

using NnBlock = void (*)(const float*, const float*, __mmask16, const Gemm&, float*, Pass);

template <int MR>
constexpr NnBlock kNnBlocks[] = {nn_block<MR, 1>, nn_block<MR, 2>, nn_block<MR, 3>, nn_block<MR, 4>};

// Rows of B per pass: the tile's columns of them (kNnPassRows x 64 floats, 32 KiB) stay in L1 while every
// block of the tile's rows goes over them.
constexpr int64_t kNnPassRows = 128;

// A tile of C = A B, in blocks of up to 4 rows x 64 columns, in passes over kNnPassRows rows of B. The
// carry is thread scratch slot 3, which no other kernel uses (this one may run inside their regions).
void nn_tile(const Gemm& g, Tile t) {
  static constexpr const NnBlock* blocks[] = {kNnBlocks<1>, kNnBlocks<2>, kNnBlocks<3>, kNnBlocks<4>};
  float* carry = thread_scratch(size_t((t.i1 - t.i0) * kTileCols), 3);
  for (int64_t k = 0; k < g.K; k += kNnPassRows)
    for (int64_t j = t.j0; j < t.j1; j += 4 * kLanes) {
      const int64_t cols = std::min<int64_t>(4 * kLanes, t.j1 - j), nv = (cols + kLanes - 1) / kLanes;
      const __mmask16 last = __mmask16((1u << (cols - (nv - 1) * kLanes)) - 1);
      for (int64_t i = t.i0, mr; i < t.i1; i += mr) {
        mr = block_rows(t.i1 - i);
        const Pass pass{k, std::min(g.K, k + kNnPassRows), carry + (i - t.i0) * kTileCols + (j - t.j0)};
        blocks[mr - 1][nv - 1](g.A + i * g.lda, g.B + j, last, g, g.C + i * g.ldc + j, pass);
      }
    }
}
#endif

// C = beta * C: the whole result when the product is empty (K = 0) or scaled away (alpha = 0).
void scale(const Gemm& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      float& c = g.C[i * g.ldc + j];
      c = g.beta == 0 ? 0 : g.beta * c;
    }
}

}  // namespace

void gemm_row_invariant(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
  if (M == 0 || N == 0) return;
  const Gemm g{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  if (K == 0 || alpha == 0) return scale(g);
#ifdef __AVX512F__
  if (!trans_a) return for_each_tile(g, trans_b ? nt_tile : nn_tile);
#endif
  for_each_tile(g, scalar_tile);
}

}  // namespace tfm::kernels
