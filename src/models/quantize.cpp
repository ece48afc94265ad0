#include "models/quantize.h"

#include "core/error.h"

namespace tfm {

kernels::WeightFormat output_format(kernels::WeightFormat format) {
  return format == kernels::WeightFormat::Q4_0 ? kernels::WeightFormat::Q8_0 : format;
}

namespace {

// `p` stored as `format`, from its float32 values (widened first when it is stored as another type).
void store_as(Parameter& p, kernels::WeightFormat format) {
  if (p.quantized && p.quantized->format == format) return;  // a tied output layer already done
  const Shape s = p.shape();
  const Tensor values = p.float_value();
  p.set_quantized(std::make_shared<const kernels::QuantizedWeight>(
      with_context(p.name, [&] { return kernels::quantize_weight(values.f32(), s[0], s[1], format); })));
}

}  // namespace

void quantize_model(Transformer& model, kernels::WeightFormat format) {
  for (Parameter* p : model.projection_weights()) store_as(*p, format);
  store_as(*model.output_weight(), output_format(format));
}

void keep_half_precision(Transformer& model, const std::map<std::string, DType>& stored) {
  std::vector<Parameter*> weights = model.projection_weights();
  weights.push_back(model.output_weight());
  for (Parameter* p : weights) {
    const auto it = stored.find(p->name);
    if (it == stored.end()) continue;
    if (it->second == DType::F16) store_as(*p, kernels::WeightFormat::F16);
    if (it->second == DType::BF16) store_as(*p, kernels::WeightFormat::BF16);
  }
}

void dequantize_model(Transformer& model) {
  for (Parameter* p : model.parameters().list()) p->dequantize();
}

}  // namespace tfm
