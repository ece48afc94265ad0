// Weight quantization for inference: y = x W^T + b with W [N, K] stored in 8 or 4 bits.
//
//   INT8: one symmetric scale per output row, s_n = max_k |W[n, k]| / 127, q = round(W / s_n) in
//         [-127, 127]. The input rows are quantized the same way on the fly (one scale per row, s_m), the
//         dot products run in int32 (AVX-512 VNNI vpdpbusd where the CPU has it) and
//         y[m, n] = s_m s_n sum_k qx[m, k] qw[n, k] + b[n].
//   INT4: llama.cpp's Q4_0: blocks of 32 weights along K, each with a scale d = v / -8 where v is the
//         block's value of largest magnitude (sign kept), q = clamp(round(W / d) + 8, 0, 15), two per
//         byte (element j of a block in the low nibble of byte j, element j + 16 in the high one);
//         W ~ (q - 8) d. The input is quantized in blocks of 32 too (Q8_0: int8, one scale per block),
//         and each block's integer dot product is scaled by both block scales. Needs K % 32 == 0.
//   BF16: every weight rounded to bfloat16 (ties to even), no scale: half the bytes of float32. A few rows
//         (decoding) multiply the stored bits directly, widened to float32 in registers (exact) and
//         accumulated in float32 against the float32 input, threads over N: the weights stream once, at
//         2 bytes each. More rows (a prompt) widen the weight into float32 per call and run the float32
//         GEMM, whose speed that conversion barely touches.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace tfm::kernels {

enum class WeightFormat { Int8, Q4_0, BF16 };

struct QuantizedWeight {
  WeightFormat format = WeightFormat::Int8;
  int64_t rows = 0, cols = 0;  // N, K
  Tensor data;                 // Int8: I8 [N, K]; Q4_0: U8 [N, K / 2]; BF16: BF16 [N, K]
  Tensor scale;                // Int8: F32 [N]; Q4_0: F32 [N, K / 32]; BF16: none
};

// Quantizes a row-major float [rows, cols] matrix. Throws tfm::Error for Q4_0 when cols % 32 != 0.
QuantizedWeight quantize_weight(const float* w, int64_t rows, int64_t cols, WeightFormat format);
// The float matrix the quantized one stands for, into out [rows, cols].
void dequantize_weight(const QuantizedWeight& q, float* out);

// Whether a BF16 product of m rows runs from the stored bits (a few rows, or row-invariant mode); otherwise
// quantized_linear widens the weight to float32 first, and a caller that holds that float32 matrix already
// (Parameter::value) multiplies it instead.
bool bf16_direct(int64_t m);

// y [m, N] = x [m, K] W^T (+ bias [N] when not null), threads over N.
void quantized_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y);

}  // namespace tfm::kernels
