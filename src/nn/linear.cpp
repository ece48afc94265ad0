#include "nn/linear.h"

#include "core/error.h"

namespace tfm::nn {

Linear::Linear(ParameterStore& store, const std::string& name, int64_t in, int64_t out, bool has_bias)
    : weight(&store.add(name + ".weight", {out, in})),
      bias(has_bias ? &store.add(name + ".bias", {out}) : nullptr) {}

ag::Var quantized_forward(Context& c, ag::Var x, const Parameter& weight, const Tensor& bias) {
  if (!weight.quantized) return {};
  if (c.tape.grad_enabled())
    fail("{}: a {} weight has no gradient (train from the float32 model, or dequantize it)", weight.name,
         kernels::format_name(weight.quantized->format));
  const int64_t rows = x.value().numel() / x.value().shape().back();
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
  return lora_projection(c, *lora, *weight, bias, x, weight->quantized ? base_forward(c, x) : ag::Var());
}

ag::Var Linear::base_forward(Context& c, ag::Var x) const {
  if (ag::Var y = quantized_forward(c, x, *weight, bias ? bias->value : Tensor()); y.defined()) return y;
  return ag::linear(x, c.tape.param(*weight), bias ? c.tape.param(*bias) : ag::Var());
}

}  // namespace tfm::nn
