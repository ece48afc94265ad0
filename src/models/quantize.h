// Weight quantization of a whole model for inference (`tfm quantize`): every attention and feed-forward
// projection weight (Transformer::projection_weights) becomes INT8, Q4_0 or bfloat16
// (kernels/cpu/quantized.h); bfloat16 also rounds the output layer; embeddings (untied), norms and biases
// stay float32.
#pragma once

#include <string>

#include "kernels/cpu/quantized.h"
#include "models/transformer.h"

namespace tfm {

// Quantizes in place: each weight gets its quantized form (used by inference without gradients) and its
// value becomes the dequantized weights. Throws tfm::Error naming a weight Q4_0 cannot split in blocks of 32.
void quantize_model(Transformer& model, kernels::WeightFormat format);

// "int8", "int4" (Q4_0) or "bf16"; anything else is an error listing them.
kernels::WeightFormat weight_format_named(const std::string& name);

}  // namespace tfm
