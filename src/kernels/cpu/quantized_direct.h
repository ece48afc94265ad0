// The direct kernels of kernels/cpu/quantized.h: y = x W^T + b for at most kDirectRows input rows, the
// weights read once from their stored type, threads over the output rows. One implementation per SIMD
// flavour, chosen at run time; each equals reference_linear up to float32 rounding (tests/unit/quantized).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/quantized.h"

namespace tfm::kernels {

// The input of an integer product, quantized once: Int8 one scale per row, Q8_0 / Q4_0 one per block of 32
// (Q8_0: d = max |x| / 127, q = round(x / d)). Empty for BF16 / F16.
struct QuantizedInput {
  std::vector<int8_t> values;  // [m, K]
  std::vector<float> scales;   // Int8: [m]; block formats: [m, K / 32]
};
QuantizedInput quantize_input(WeightFormat format, const float* x, int64_t m, int64_t K);

// Rows [first, first + count) of the input (count <= kDirectRows) against every output row.
void direct_linear(const float* x, const QuantizedInput& qx, int64_t first, int64_t count,
                   const QuantizedWeight& w, const float* bias, float* y);

// The same from the dequantized weights and the quantized input, sums in float64: the scalar reference, and
// what runs where the CPU has no AVX2.
void reference_rows(const float* x, const QuantizedInput& qx, int64_t first, int64_t count,
                    const QuantizedWeight& w, const float* bias, float* y);

// "avx2 (bf16: avx512)" (AVX-512 compiled in), "avx2" (the CPU has AVX2, FMA and F16C) or "scalar".
const char* direct_isa();

}  // namespace tfm::kernels
