#include "nn/linear.h"

namespace tfm::nn {

Linear::Linear(ParameterStore& store, const std::string& name, int64_t in, int64_t out, bool has_bias)
    : weight(&store.add(name + ".weight", {out, in})),
      bias(has_bias ? &store.add(name + ".bias", {out}) : nullptr) {}

ag::Var Linear::forward(Context& c, ag::Var x) const {
  if (!lora) return base_forward(c, x);
  const bool integer_product = weight->quantized && !c.tape.grad_enabled();
  return lora_projection(c, *lora, *weight, bias, x, integer_product ? base_forward(c, x) : ag::Var());
}

ag::Var Linear::base_forward(Context& c, ag::Var x) const {
  if (weight->quantized && !c.tape.grad_enabled()) {
    const Tensor in = x.value().contiguous();
    Shape shape = in.shape();
    const int64_t rows = in.numel() / shape.back();
    shape[shape.size() - 1] = weight->quantized->rows;
    Tensor out = Tensor::empty(shape);
    kernels::quantized_linear(in.f32(), rows, *weight->quantized, bias ? bias->value.f32() : nullptr,
                              out.f32());
    return c.tape.leaf(out, false);
  }
  return ag::linear(x, c.tape.param(*weight), bias ? c.tape.param(*bias) : ag::Var());
}

}  // namespace tfm::nn
