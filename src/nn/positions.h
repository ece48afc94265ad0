// Sinusoidal position encodings (paper section 3.5), in the seed's interleaved layout:
//   PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)).
#pragma once

#include "tensor/tensor.h"

namespace tfm::nn {

// A persistent [max_len, d_model] table. Angles are computed as the seed's PyTorch code does in
// float32: div = exp(2i * -(ln 10000 / d)), angle = pos * div.
Tensor sinusoidal_table(int64_t max_len, int64_t d_model);

}  // namespace tfm::nn
