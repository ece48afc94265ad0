// Elementwise activations on contiguous float32 buffers. Backward kernels accumulate (+=) into the
// input gradients and recompute what they need from the forward inputs.
//   GELU, erf form (BERT "gelu", torch.nn.GELU()):  y = x/2 (1 + erf(x / sqrt 2))
//   GELU, tanh form (GPT-2 "gelu_new", BLOOM's bloom_gelu_forward):
//     y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//     (BLOOM writes sqrt(2/pi) as 0.79788456, 1e-9 away: below float32 resolution, so one kind serves both)
//   SiLU (Llama "silu"):  y = x sigmoid(x)
//   SwiGLU (Llama MLP):   y = silu(gate) * up
#pragma once

#include <cstdint>

namespace tfm::kernels {

enum class GeluKind : uint8_t { Erf, Tanh };

void gelu_forward(GeluKind kind, const float* x, float* y, int64_t n);
void gelu_backward(GeluKind kind, const float* x, const float* dy, float* dx, int64_t n);

void silu_forward(const float* x, float* y, int64_t n);
void silu_backward(const float* x, const float* dy, float* dx, int64_t n);

void swiglu_forward(const float* gate, const float* up, float* y, int64_t n);
// dgate and dup may each be null.
void swiglu_backward(const float* gate, const float* up, const float* dy, float* dgate, float* dup,
                     int64_t n);

void mul_forward(const float* a, const float* b, float* y, int64_t n);
// da += dy * b, db += dy * a (either may be null).
void mul_backward(const float* a, const float* b, const float* dy, float* da, float* db, int64_t n);

}  // namespace tfm::kernels
