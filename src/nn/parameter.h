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
  // Set for a weight loaded quantized (a `tfm quantize` checkpoint): inference without gradients runs
  // the quantized kernel; `value` holds the dequantized weights for everything else.
  std::shared_ptr<const kernels::QuantizedWeight> quantized;

  Parameter() = default;
  Parameter(std::string n, const Shape& shape)
      : name(std::move(n)), value(Tensor::zeros_persistent(shape)), grad(Tensor::zeros_persistent(shape)) {}
};

using ParameterList = std::vector<Parameter*>;

}  // namespace tfm
