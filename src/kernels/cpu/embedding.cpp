#include "kernels/cpu/embedding.h"

#include <algorithm>

#include "core/error.h"

namespace tfm::kernels {

void embedding_forward(const float* table, int64_t vocab, int64_t dim, const int64_t* ids, int64_t rows,
                       float scale, float* y) {
  for (int64_t r = 0; r < rows; ++r)
    if (ids[r] < 0 || ids[r] >= vocab)
      fail("token id {} at position {} is outside the vocabulary of {}", ids[r], r, vocab);
#pragma omp parallel for schedule(static) if (rows * dim > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = table + ids[r] * dim;
    float* dst = y + r * dim;
#pragma omp simd
    for (int64_t c = 0; c < dim; ++c) dst[c] = scale * src[c];
  }
}

void quantized_embedding_forward(const QuantizedWeight& table, const int64_t* ids, int64_t rows, float scale,
                                 float* y) {
  const int64_t dim = table.cols;
  for (int64_t r = 0; r < rows; ++r)
    if (ids[r] < 0 || ids[r] >= table.rows)
      fail("token id {} at position {} is outside the vocabulary of {}", ids[r], r, table.rows);
#pragma omp parallel for schedule(static) if (rows * dim > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = y + r * dim;
    dequantize_rows(table, ids[r], 1, dst);
    for (int64_t c = 0; c < dim; ++c) dst[c] *= scale;
  }
}

void embedding_backward(const float* dy, const int64_t* ids, int64_t rows, int64_t dim, float scale,
                        float* dtable, int64_t padding_idx) {
  // Rows may repeat an id, so threads split the columns, not the rows (deterministic, race-free).
  constexpr int64_t kBand = 64;
  int64_t bands = (dim + kBand - 1) / kBand;
#pragma omp parallel for schedule(static) if (rows * dim > (1 << 15))
  for (int64_t b = 0; b < bands; ++b) {
    int64_t c0 = b * kBand, c1 = std::min(dim, c0 + kBand);
    for (int64_t r = 0; r < rows; ++r) {
      if (ids[r] == padding_idx) continue;
      const float* g = dy + r * dim;
      float* dst = dtable + ids[r] * dim;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += scale * g[c];
    }
  }
}

}  // namespace tfm::kernels
