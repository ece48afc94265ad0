// Layer normalisation over the last dimension of a [rows, cols] buffer.
//   Standard (Ba et al. 2016):  y = g * (x - mean) / sqrt(var + eps) + b, var biased (divide by n).
//   Seed (document 004):        y = g * (x - mean) / (std + eps) + b, std unbiased (divide by n - 1).
// Forward saves per row the mean and inv = 1 / sqrt(var + eps) or 1 / (std + eps).
#pragma once

#include <cstdint>

namespace tfm::kernels {

enum class NormKind : uint8_t { LayerNorm, SeedLayerNorm };

void layer_norm_forward(NormKind kind, const float* x, const float* gamma, const float* beta, float* y,
                        float* mean, float* inv, int64_t rows, int64_t cols, float eps);

// Accumulates into dx, dgamma, dbeta (any may be null to skip).
void layer_norm_backward(NormKind kind, const float* x, const float* gamma, const float* mean,
                         const float* inv, const float* dy, float* dx, float* dgamma, float* dbeta,
                         int64_t rows, int64_t cols, float eps);

}  // namespace tfm::kernels
