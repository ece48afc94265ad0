// Elementwise activations and products: gelu, silu, swiglu, mul (kernels/cpu/activation.h).
#include "autograd/op_util.h"
#include "autograd/ops.h"

namespace tfm::ag {

Var gelu(Var x, k::GeluKind kind) {
  auto [r, node] = unary_elementwise(
      x, "gelu", [kind](const float* xp, float* y, int64_t size) { k::gelu_forward(kind, xp, y, size); },
      [](Tape& t, const Node& n) {
        const Tensor& xv = t.value(n.in[0]);
        if (float* dx = grad_ptr(t, n, 0))
          k::gelu_backward(k::GeluKind(n.i[0]), xv.f32(), out_grad(t, n), dx, xv.numel());
      });
  if (node) node->i[0] = int64_t(kind);
  return r;
}

Var silu(Var x) {
  return unary_elementwise(x, "silu", k::silu_forward,
                           [](Tape& t, const Node& n) {
                             const Tensor& xv = t.value(n.in[0]);
                             if (float* dx = grad_ptr(t, n, 0))
                               k::silu_backward(xv.f32(), out_grad(t, n), dx, xv.numel());
                           })
      .out;
}

Var swiglu(Var gate, Var up) {
  return binary_elementwise(gate, up, "swiglu", k::swiglu_forward, [](Tape& t, const Node& n) {
    const Tensor& g = t.value(n.in[0]);
    k::swiglu_backward(g.f32(), t.value(n.in[1]).f32(), out_grad(t, n), grad_ptr(t, n, 0), grad_ptr(t, n, 1),
                       g.numel());
  });
}

Var mul(Var a, Var b) {
  return binary_elementwise(a, b, "mul", k::mul_forward, [](Tape& t, const Node& n) {
    const Tensor& av = t.value(n.in[0]);
    k::mul_backward(av.f32(), t.value(n.in[1]).f32(), out_grad(t, n), grad_ptr(t, n, 0), grad_ptr(t, n, 1),
                    av.numel());
  });
}

}  // namespace tfm::ag
