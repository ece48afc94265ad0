// Sinusoidal position encodings (paper section 3.5) in two layouts, with the angles
// angle(pos, i) = pos / 10000^(2i/d) for frequency i in [0, d/2):
//   interleaved (the seed):      PE[pos, 2i] = sin, PE[pos, 2i+1] = cos
//   half-split (Marian, HF MarianSinusoidalPositionalEmbedding): PE[pos, i] = sin, PE[pos, d/2 + i] = cos
// (for odd d the sin half has ceil(d/2) columns and the cos half floor(d/2)).
#pragma once

#include "tensor/tensor.h"

namespace tfm::nn {

// A persistent [max_len, d_model] table. Angles are computed as the seed's PyTorch code does in
// float32: div = exp(2i * -(ln 10000 / d)), angle = pos * div.
Tensor sinusoidal_table(int64_t max_len, int64_t d_model);

// A persistent [max_len, d_model] table in Marian's layout, computed in double and rounded once, as
// Hugging Face fills it from a float64 numpy array.
Tensor sinusoidal_half_table(int64_t max_len, int64_t d_model);

}  // namespace tfm::nn
