// Weight storage types for inference: y = x W^T + b with W [N, K] kept in its stored type, never as a
// float32 copy. Blocks are exactly ggml's, so GGUF tensors load as they are:
//
//   BF16: every weight rounded to bfloat16 (ties to even).                         2 bytes a weight
//   F16:  every weight rounded to IEEE half precision (ties to even).               2 bytes a weight
//   INT8: one symmetric scale per output row, s_n = max_k |W[n, k]| / 127, q = round(W / s_n).
//   Q8_0: blocks of 32 weights along K, each {float16 d; int8 q[32]} (34 bytes): d = max |w| / 127,
//         q = round(w / d) (half away from zero), w ~ d q.                         1.0625 bytes a weight
//   Q4_0: blocks of 32, each {float16 d; uint8 q[16]} (18 bytes): d = v / -8 where v is the block's value
//         of largest magnitude (sign kept), q = min(15, trunc(w / d + 8.5)), element j of the block in the
//         low nibble of byte j and element j + 16 in the high one; w ~ d (q - 8).    0.5625 bytes a weight
//
// The products (ggml's way for the integer types): INT8 quantizes each input row once (one scale per row)
// and Q8_0 / Q4_0 quantize it once in Q8_0 blocks; each block's (row's) integer dot product is scaled by both
// scales. BF16 / F16 widen the weights to float32 in registers and multiply the float32 input.
// A few rows (decoding, kDirectRows at a time) run the direct kernels: threads split the output rows and
// the weights stream once. More rows (a prompt) widen a panel of output rows at a time into float32 (a
// cache-sized buffer, never the whole matrix) and multiply it with the float32 GEMM. Row-invariant mode
// (tfm serve's batches, gemm.h) keeps every row on the direct kernels, whose rows never depend on the others.
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace tfm::kernels {

enum class WeightFormat { Int8, Q8_0, Q4_0, BF16, F16 };

inline constexpr int64_t kBlockWeights = 32;  // Q8_0 / Q4_0 block length along K
inline constexpr int64_t kDirectRows = 8;     // input rows per pass of the direct kernels

struct QuantizedWeight {
  WeightFormat format = WeightFormat::Int8;
  int64_t rows = 0, cols = 0;  // N, K
  // BF16 / F16: BF16 / F16 [N, K]; Int8: I8 [N, K]; Q8_0 / Q4_0: U8 [N, row_bytes(format, K)], the blocks.
  Tensor data;
  Tensor scale;  // Int8: F32 [N]; otherwise undefined
};

// "bf16", "f16", "int8", "q8_0", "q4_0".
const char* format_name(WeightFormat format);
// The format of that name (or "int4", the same as q4_0); anything else is an error listing them.
WeightFormat format_named(const std::string& name);
// Bytes of one stored row of `cols` weights (scales inside blocks counted; Int8's row scale not).
int64_t row_bytes(WeightFormat format, int64_t cols);
// Whether `format` stores in blocks of kBlockWeights (then cols must be a multiple of it).
bool is_block_format(WeightFormat format);

// Quantizes a row-major float [rows, cols] matrix. Throws tfm::Error for a block format when cols % 32 != 0.
QuantizedWeight quantize_weight(const float* w, int64_t rows, int64_t cols, WeightFormat format);
// Rows [first, first + count) of the float matrix the quantized one stands for, into out [count, cols].
void dequantize_rows(const QuantizedWeight& q, int64_t first, int64_t count, float* out);
inline void dequantize_weight(const QuantizedWeight& q, float* out) { dequantize_rows(q, 0, q.rows, out); }

// y [m, N] = x [m, K] W^T (+ bias [N] when not null).
void quantized_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y);

// The scalar reference of the direct kernels: the same input quantization (integer types), the dequantized
// weights, sums in float64. The kernels are tested against it.
void reference_linear(const float* x, int64_t m, const QuantizedWeight& w, const float* bias, float* y);

}  // namespace tfm::kernels
