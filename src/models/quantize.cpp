#include "models/quantize.h"

#include "core/error.h"

namespace tfm {

void quantize_model(Transformer& model, kernels::WeightFormat format) {
  for (Parameter* p : model.projection_weights()) {
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
  fail("unknown weight type '{}' (int8, int4)", name);
}

}  // namespace tfm
