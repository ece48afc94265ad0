// A trainable tensor: its value, its gradient (same shape, accumulated by backward), and its name
// in tfm's canonical dotted naming ("decoder.layers.0.self_attn.q_proj.weight").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/quantized.h"
#include "tensor/tensor.h"

namespace tfm {

struct Parameter {
  std::string name;
  Tensor value;  // persistent float32
  Tensor grad;   // persistent float32, same shape; zeroed by the optimizer's zero_grad()
  bool trainable = true;
  // Set for a weight kept in a storage type for inference (kernels/cpu/quantized.h: `tfm quantize`, a GGUF
  // file): the kernels read it, and `value` and `grad` are released (undefined), so there is no float32
  // copy. Training a model that has them starts from dequantize().
  std::shared_ptr<const kernels::QuantizedWeight> quantized;

  Parameter() = default;
  Parameter(std::string n, const Shape& shape)
      : name(std::move(n)), value(Tensor::zeros_persistent(shape)), grad(Tensor::zeros_persistent(shape)) {}

  Shape shape() const;         // value's, or the quantized weight's [rows, cols]
  Tensor float_value() const;  // value, or the quantized weight widened into a new float32 tensor
  // Keeps `q` (of this parameter's shape) and releases value and grad.
  void set_quantized(std::shared_ptr<const kernels::QuantizedWeight> q);
  // Back to a float32 value (the quantized weights widened) and a zero gradient.
  void dequantize();
};

using ParameterList = std::vector<Parameter*>;

}  // namespace tfm
