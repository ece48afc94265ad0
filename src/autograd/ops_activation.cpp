// Elementwise activations and products: gelu, silu, swiglu, mul (kernels/cpu/activation.h).
#include "autograd/op_util.h"
#include "autograd/ops.h"

namespace tfm::ag {

namespace k = tfm::kernels;
using detail::check_same_shape;
using detail::contiguous_input;
using detail::grad_ptr;
using detail::out_grad;

Var gelu(Var x, k::GeluKind kind) {
  const Tensor& xv = contiguous_input(x, "gelu");
  Tensor y = Tensor::empty(xv.shape());
  k::gelu_forward(kind, xv.f32(), y.f32(), y.numel());
  Var r;
  if (Node* n = x.tape()->record(r, y, "gelu",
                                 [](Tape& t, const Node& n) {
                                   const Tensor& xv = t.value(n.in[0]);
                                   if (float* dx = grad_ptr(t, n, 0))
                                     k::gelu_backward(k::GeluKind(n.i[0]), xv.f32(), out_grad(t, n), dx,
                                                      xv.numel());
                                 },
                                 {x}))
    n->i[0] = int64_t(kind);
  return r;
}

Var silu(Var x) {
  const Tensor& xv = contiguous_input(x, "silu");
  Tensor y = Tensor::empty(xv.shape());
  k::silu_forward(xv.f32(), y.f32(), y.numel());
  Var r;
  x.tape()->record(r, y, "silu",
                   [](Tape& t, const Node& n) {
                     const Tensor& xv = t.value(n.in[0]);
                     if (float* dx = grad_ptr(t, n, 0))
                       k::silu_backward(xv.f32(), out_grad(t, n), dx, xv.numel());
                   },
                   {x});
  return r;
}

Var swiglu(Var gate, Var up) {
  const Tensor& g = contiguous_input(gate, "swiglu");
  const Tensor& u = contiguous_input(up, "swiglu");
  check_same_shape(g, u, "swiglu");
  Tensor y = Tensor::empty(g.shape());
  k::swiglu_forward(g.f32(), u.f32(), y.f32(), y.numel());
  Var r;
  gate.tape()->record(r, y, "swiglu",
                      [](Tape& t, const Node& n) {
                        const Tensor& g = t.value(n.in[0]);
                        k::swiglu_backward(g.f32(), t.value(n.in[1]).f32(), out_grad(t, n), grad_ptr(t, n, 0),
                                           grad_ptr(t, n, 1), g.numel());
                      },
                      {gate, up});
  return r;
}

Var mul(Var a, Var b) {
  const Tensor& av = contiguous_input(a, "mul");
  const Tensor& bv = contiguous_input(b, "mul");
  check_same_shape(av, bv, "mul");
  Tensor y = Tensor::empty(av.shape());
  k::mul_forward(av.f32(), bv.f32(), y.f32(), y.numel());
  Var r;
  a.tape()->record(r, y, "mul",
                   [](Tape& t, const Node& n) {
                     const Tensor& av = t.value(n.in[0]);
                     k::mul_backward(av.f32(), t.value(n.in[1]).f32(), out_grad(t, n), grad_ptr(t, n, 0),
                                     grad_ptr(t, n, 1), av.numel());
                   },
                   {a, b});
  return r;
}

}  // namespace tfm::ag
