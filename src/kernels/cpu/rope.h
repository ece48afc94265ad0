// Rotary position embedding (Su et al. 2021) in Hugging Face's rotate-half convention (Llama, Mistral,
// Mixtral: modeling_llama.py rotate_half / apply_rotary_pos_emb). For each head of head_dim d and each
// i < d/2 the pair (x[i], x[i + d/2]) is rotated by the angle pos * inv_freq[i]:
//   y[i]       = x[i] cos - x[i + d/2] sin
//   y[i + d/2] = x[i + d/2] cos + x[i] sin,        inv_freq[i] = 1 / theta^(2i / d)
// inv_freq and the angle are computed in float32 exactly as HF's LlamaRotaryEmbedding does (it forces
// float32 even for a float64 model), so long positions round the same way; cos/sin are then taken of
// that float32 angle.
#pragma once

#include <cstdint>

namespace tfm::kernels {

// x, y: [rows, heads * head_dim]; positions[r] is the position of row r. inverse = true rotates by
// -angle (the transpose of the rotation, i.e. the backward), and accumulates into y instead of writing.
void rope_apply(const float* x, float* y, const int64_t* positions, int64_t rows, int64_t heads,
                int64_t head_dim, float theta, bool inverse);

}  // namespace tfm::kernels
