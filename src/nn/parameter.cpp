#include "nn/parameter.h"

#include "core/error.h"

namespace tfm {

Shape Parameter::shape() const { return quantized ? Shape{quantized->rows, quantized->cols} : value.shape(); }

Tensor Parameter::float_value() const {
  if (!quantized) return value;
  Tensor wide = Tensor::empty_persistent(shape());
  kernels::dequantize_weight(*quantized, wide.f32());
  return wide;
}

void Parameter::set_quantized(std::shared_ptr<const kernels::QuantizedWeight> q) {
  TFM_CHECK((Shape{q->rows, q->cols} == shape()), "set_quantized: shape mismatch");
  quantized = std::move(q);
  value = Tensor();
  grad = Tensor();
}

void Parameter::dequantize() {
  if (!quantized) return;
  value = float_value();
  grad = Tensor::zeros_persistent(value.shape());
  quantized.reset();
}

}  // namespace tfm
