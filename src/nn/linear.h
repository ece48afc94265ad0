// Fully connected layer y = x W^T + b (weight stored [out, in], as torch.nn.Linear), plus a LoRA
// adapter's update when one is attached (nn/lora.h).
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/lora.h"
#include "nn/parameter_store.h"

namespace tfm::nn {

// x W^T + bias ([N] or undefined) for a weight in a storage type (Parameter::quantized) through
// kernels::quantized_linear, or an undefined Var for a float32 weight (the caller multiplies its value).
// A quantized weight has no gradient: with gradients on it is an error naming it.
ag::Var quantized_forward(Context& c, ag::Var x, const Parameter& weight, const Tensor& bias);

struct Linear {
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;          // null when the layer has none
  const LoraAdapter* lora = nullptr;  // owned by the model (Transformer::add_lora)

  Linear() = default;
  Linear(ParameterStore& store, const std::string& name, int64_t in, int64_t out, bool has_bias);
  ag::Var forward(Context& c, ag::Var x) const;

 private:
  ag::Var base_forward(Context& c, ag::Var x) const;  // x W^T + b
};

}  // namespace tfm::nn
