// Fully connected layer y = x W^T + b (weight stored [out, in], as torch.nn.Linear), plus a LoRA
// adapter's update when one is attached (nn/lora.h).
#pragma once

#include <string>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/lora.h"
#include "nn/parameter_store.h"

namespace tfm::nn {

// Inference with a quantized weight (Parameter::quantized): whether x W^T of `rows` rows runs its quantized
// kernel (gradients off; a bfloat16 weight only for the rows kernels::bf16_direct takes), and that product
// plus `bias` ([N] or undefined) through kernels::quantized_linear, or an undefined Var where it does not run
// (the caller multiplies the float32 value).
bool uses_quantized(const Context& c, const Parameter& weight, int64_t rows);
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
