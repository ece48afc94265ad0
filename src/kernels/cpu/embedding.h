// Embedding lookup: y[r, :] = scale * table[ids[r], :], and its gradient (scatter-add).
#pragma once

#include <cstdint>

namespace tfm::kernels {

// Throws tfm::Error naming the first id outside [0, vocab).
void embedding_forward(const float* table, int64_t vocab, int64_t dim, const int64_t* ids, int64_t rows,
                       float scale, float* y);
// dtable[ids[r], :] += scale * dy[r, :]
void embedding_backward(const float* dy, const int64_t* ids, int64_t rows, int64_t dim, float scale,
                        float* dtable);

}  // namespace tfm::kernels
