// Weight storage types for a whole model for inference (`tfm quantize`): every attention and feed-forward
// projection weight (Transformer::projection_weights) and the output layer take the type
// (kernels/cpu/quantized.h), with no float32 copy kept. The output layer (tied to the token embedding in most
// language models, whose lookups then read its rows from the stored type) is the widest matrix and the most
// sensitive: bf16 / f16 store it in their type; int8 as int8 rows; q8_0 and q4_0 as Q8_0. Embeddings of
// untied models, norms and biases stay float32.
#pragma once

#include <map>
#include <string>

#include "kernels/cpu/quantized.h"
#include "models/transformer.h"

namespace tfm {

// Quantizes in place. Throws tfm::Error naming a weight a block format cannot split in blocks of 32.
void quantize_model(Transformer& model, kernels::WeightFormat format);

// The type the output layer takes when the projections take `format`.
kernels::WeightFormat output_format(kernels::WeightFormat format);

// Keeps the weights quantize_model converts in float16 / bfloat16 where `stored` (parameter name -> dtype of
// the checkpoint tensor it was read from) says the file holds them so: a Hugging Face model saved in half
// precision loads at half the memory, with the same values. Other weights stay float32.
void keep_half_precision(Transformer& model, const std::map<std::string, DType>& stored);

// Every quantized weight back to float32 (training starts from a quantized model this way).
void dequantize_model(Transformer& model);

}  // namespace tfm
