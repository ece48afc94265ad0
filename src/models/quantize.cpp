#include "models/quantize.h"

#include "core/error.h"

namespace tfm {

void quantize_model(Transformer& model, kernels::WeightFormat format) {
  std::vector<Parameter*> weights = model.projection_weights();
  // bfloat16 rounds the output layer too (the largest matrix of a language model; tied to the embedding,
  // whose lookups then read the rounded values); INT8 and Q4_0 keep it in float32.
  if (format == kernels::WeightFormat::BF16) weights.push_back(model.output_weight());
  for (Parameter* p : weights) {
    const Shape& s = p->value.shape();
    auto q = std::make_shared<kernels::QuantizedWeight>(
        with_context(p->name, [&] { return kernels::quantize_weight(p->value.f32(), s[0], s[1], format); }));
    kernels::dequantize_weight(*q, p->value.f32());
    p->quantized = std::move(q);
  }
}

kernels::WeightFormat weight_format_named(const std::string& name) {
  if (name == "int8") return kernels::WeightFormat::Int8;
  if (name == "int4") return kernels::WeightFormat::Q4_0;
  if (name == "bf16") return kernels::WeightFormat::BF16;
  fail("unknown weight type '{}' (int8, int4, bf16)", name);
}

}  // namespace tfm
