#include "nn/linear.h"

namespace tfm::nn {

Linear::Linear(ParameterStore& store, const std::string& name, int64_t in, int64_t out, bool has_bias)
    : weight(&store.add(name + ".weight", {out, in})),
      bias(has_bias ? &store.add(name + ".bias", {out}) : nullptr) {}

// A bfloat16 weight's float32 value holds exactly the rounded weights: many rows multiply it with the float32
// GEMM rather than widen the weight again on every call.
bool uses_quantized(const Context& c, const Parameter& weight, int64_t rows) {
  return weight.quantized && !c.tape.grad_enabled() &&
         (weight.quantized->format != kernels::WeightFormat::BF16 || kernels::bf16_direct(rows));
}

ag::Var quantized_forward(Context& c, ag::Var x, const Parameter& weight, const Tensor& bias) {
  const int64_t rows = x.value().numel() / x.value().shape().back();
  if (!uses_quantized(c, weight, rows)) return {};
  const Tensor in = x.value().contiguous();
  Shape shape = in.shape();
  shape[shape.size() - 1] = weight.quantized->rows;
  Tensor out = Tensor::empty(shape);
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  kernels::quantized_linear(in.f32(), rows, *weight.quantized, b.defined() ? b.f32() : nullptr, out.f32());
  return c.tape.leaf(out, false);
}

ag::Var Linear::forward(Context& c, ag::Var x) const {
  if (!lora) return base_forward(c, x);
  const bool integer_product = uses_quantized(c, *weight, x.value().numel() / x.value().shape().back());
  return lora_projection(c, *lora, *weight, bias, x, integer_product ? base_forward(c, x) : ag::Var());
}

ag::Var Linear::base_forward(Context& c, ag::Var x) const {
  if (ag::Var y = quantized_forward(c, x, *weight, bias ? bias->value : Tensor()); y.defined()) return y;
  return ag::linear(x, c.tape.param(*weight), bias ? c.tape.param(*bias) : ag::Var());
}

}  // namespace tfm::nn
