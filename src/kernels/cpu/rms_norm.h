// Root-mean-square normalisation over the last dimension of a [rows, cols] buffer (Zhang & Sennrich
// 2019), as Llama/Mistral/Mixtral's RMSNorm and T5's LayerNorm compute it (no mean, no bias):
//   y = gamma * x / sqrt(mean(x^2) + eps)
// The sum of squares is accumulated in double. Forward saves inv[r] = 1 / sqrt(mean(x_r^2) + eps).
#pragma once

#include <cstdint>

namespace tfm::kernels {

void rms_norm_forward(const float* x, const float* gamma, float* y, float* inv, int64_t rows, int64_t cols,
                      float eps);

// Accumulates into dx and dgamma (either may be null):
//   dx = inv * (g - x * inv^2 * mean(g * x)),  g = dy * gamma;   dgamma += sum_rows dy * x * inv
void rms_norm_backward(const float* x, const float* gamma, const float* inv, const float* dy, float* dx,
                       float* dgamma, int64_t rows, int64_t cols);

}  // namespace tfm::kernels
