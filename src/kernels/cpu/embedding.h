// Embedding lookup: y[r, :] = scale * table[ids[r], :], and its gradient (scatter-add).
#pragma once

#include <cstdint>

#include "kernels/cpu/quantized.h"

namespace tfm::kernels {

// Throws tfm::Error naming the first id outside [0, vocab).
void embedding_forward(const float* table, int64_t vocab, int64_t dim, const int64_t* ids, int64_t rows,
                       float scale, float* y);
// The same from a table in a storage type (a tied output layer, models/quantize.h): rows widened as read.
void quantized_embedding_forward(const QuantizedWeight& table, const int64_t* ids, int64_t rows, float scale,
                                 float* y);
// dtable[ids[r], :] += scale * dy[r, :], except rows whose id is padding_idx (torch.nn.Embedding's
// padding_idx: that row gets no gradient); padding_idx -1: none.
void embedding_backward(const float* dy, const int64_t* ids, int64_t rows, int64_t dim, float scale,
                        float* dtable, int64_t padding_idx = -1);

}  // namespace tfm::kernels
