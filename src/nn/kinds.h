// The choices that select how nn/ modules compute: norm, positions, activation (ModelConfig holds them).
#pragma once

namespace tfm::nn {

// LayerNorm: g (x - mean) / sqrt(var + eps) + b. SeedLayerNorm: g (x - mean) / (std_unbiased + eps) + b.
// RMSNorm: g x / sqrt(mean(x^2) + eps) (T5, Llama).
enum class NormType { LayerNorm, SeedLayerNorm, RMSNorm };
enum class PositionKind {
  SinusoidalInterleaved,  // the seed: PE[p, 2i] = sin, PE[p, 2i+1] = cos
  SinusoidalHalf,         // Marian: sin of every frequency in the first half, cos in the second
  Learned,                // a trained table (GPT-2, BERT)
  RoPE,                   // rotary, rotate-half convention (Llama), base rope_theta
  ALiBi,                  // linear biases on the attention scores (BLOOM)
  T5Relative,             // bucketed relative position biases (T5)
};
// Softmax: softmax(q k^T) v (with the fused flash kernel); Linear: phi(q) (phi(k)^T v) with phi = elu + 1
// (kernels/cpu/linear_attention.h), for self-attention.
enum class AttentionKind { Softmax, Linear };
enum class Activation { ReLU, GeluErf, GeluTanh, SwiGLU };  // SwiGLU: silu(gate(x)) * up(x)

}  // namespace tfm::nn
