// rms_norm (kernels/cpu/rms_norm.h). layer_norm lives in ops.cpp.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/cpu/rms_norm.h"

namespace tfm::ag {

Var rms_norm(Var x, Var gamma, float eps) {
  const Tensor& xv = contiguous_input(x, "rms_norm");
  const Tensor& g = contiguous_input(gamma, "rms_norm");
  int64_t cols = xv.size(-1), rows = xv.numel() / cols;
  TFM_CHECK(g.numel() == cols, "rms_norm: weight {} for input {}", g.str(), xv.str());
  Tensor y = Tensor::empty(xv.shape());
  Tensor inv = Tensor::empty({rows});
  k::rms_norm_forward(xv.f32(), g.f32(), y.f32(), inv.f32(), rows, cols, eps);
  Var r;
  if (Node* n = x.tape()->record(r, y, "rms_norm",
                                 [](Tape& t, const Node& n) {
                                   const Tensor& xv = t.value(n.in[0]);
                                   int64_t cols = xv.size(-1), rows = xv.numel() / cols;
                                   k::rms_norm_backward(xv.f32(), t.value(n.in[1]).f32(), n.saved[0].f32(),
                                                        out_grad(t, n), grad_ptr(t, n, 0), grad_ptr(t, n, 1),
                                                        rows, cols);
                                 },
                                 {x, gamma}))
    n->saved[0] = inv;
  return r;
}

}  // namespace tfm::ag
