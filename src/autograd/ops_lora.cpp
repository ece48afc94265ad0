// lora_linear(): a linear layer with a LoRA adapter as one op (nn/lora.h).
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/scratch.h"

namespace tfm::ag {

namespace {

using namespace detail;

// The calling thread's scratch slot for the dropped input (the attention kernels' tiles use 0-2).
constexpr int kDroppedSlot = 3;

// The input after dropout: x itself without dropout, else dropout(x) regenerated into scratch.
const float* dropped_input(const float* x, int64_t n, float p, uint64_t seed, uint64_t offset) {
  if (p <= 0) return x;
  float* d = k::thread_scratch(size_t(n), kDroppedSlot);
  k::dropout_forward(x, d, n, p, seed, offset);
  return d;
}

// Node: in = {x, W, bias, A, B}; f = {scale, dropout p}; i = {dropout seed, dropout offset};
// saved[0] = h = dropout(x) A^T.
void lora_linear_backward(Tape& t, const Node& n) {
  const Tensor& xv = t.value(n.in[0]);
  const Tensor& w = t.value(n.in[1]);
  const Tensor& a = t.value(n.in[3]);
  const Tensor& b = t.value(n.in[4]);
  const int64_t r = a.size(0), in = a.size(1), out = b.size(0), rows = xv.numel() / in;
  const float scale = n.f[0], p = n.f[1];
  const uint64_t seed = uint64_t(n.i[0]), offset = uint64_t(n.i[1]);
  const float* g = out_grad(t, n);
  float* dx = grad_ptr(t, n, 0);
  if (dx)  // dx += g W
    k::gemm(false, false, rows, in, out, 1.0f, g, out, w.f32(), in, 1.0f, dx, in);
  if (float* dw = grad_ptr(t, n, 1))  // dW += g^T x
    k::gemm(true, false, out, in, rows, 1.0f, g, out, xv.f32(), in, 1.0f, dw, in);
  if (float* dbias = grad_ptr(t, n, 2)) k::bias_grad(g, dbias, rows, out);
  if (float* db = grad_ptr(t, n, 4))  // dB += scale g^T h
    k::gemm(true, false, out, r, rows, scale, g, out, n.saved[0].f32(), r, 1.0f, db, r);
  float* da = grad_ptr(t, n, 3);
  if (!dx && !da) return;
  Tensor gb_t = Tensor::empty({rows, r});  // scale g B
  float* gb = gb_t.f32();
  k::gemm(false, false, rows, r, out, scale, g, out, b.f32(), r, 0.0f, gb, r);
  if (da)  // dA += (scale g B)^T dropout(x)
    k::gemm(true, false, r, in, rows, 1.0f, gb, r, dropped_input(xv.f32(), xv.numel(), p, seed, offset), in,
            1.0f, da, in);
  if (!dx) return;
  if (p <= 0) {  // dx += (scale g B) A
    k::gemm(false, false, rows, in, r, 1.0f, gb, r, a.f32(), in, 1.0f, dx, in);
    return;
  }
  float* u = k::thread_scratch(size_t(rows * in), kDroppedSlot);
  k::gemm(false, false, rows, in, r, 1.0f, gb, r, a.f32(), in, 0.0f, u, in);
  k::dropout_backward(u, dx, rows * in, p, seed, offset);
}

}  // namespace

Var lora_linear(Var x, Var w, Var bias, Var a, Var b, float scale, float p, Rng* rng, bool training) {
  const Tensor& xv = contiguous_input(x, "lora_linear");
  const Tensor& wv = contiguous_input(w, "lora_linear");
  const Tensor& av = contiguous_input(a, "lora_linear");
  const Tensor& bv = contiguous_input(b, "lora_linear");
  const int64_t r = av.size(0), in = av.size(1), out = bv.size(0), rows = xv.numel() / in;
  TFM_CHECK(av.dim() == 2 && bv.dim() == 2 && bv.size(1) == r && xv.size(-1) == in &&
                wv.shape() == (Shape{out, in}),
            "lora_linear: x {} W {} A {} B {}", xv.str(), wv.str(), av.str(), bv.str());
  uint64_t seed = 0, offset = 0;
  if (!training) p = 0;
  if (p > 0) {
    TFM_CHECK(rng, "LoRA dropout needs an rng");
    seed = rng->seed();
    offset = rng->take(uint64_t(xv.numel()));
  }
  Tensor y = Tensor::empty(with_last(xv.shape(), out));
  k::gemm(false, true, rows, out, in, 1.0f, xv.f32(), in, wv.f32(), in, 0.0f, y.f32(), out);
  if (bias.defined()) k::bias_add(y.f32(), contiguous_input(bias, "lora_linear").f32(), rows, out);
  // h = dropout(x) A^T [rows, r], kept for backward; y += scale h B^T.
  Tensor h = Tensor::empty(with_last(xv.shape(), r));
  k::gemm(false, true, rows, r, in, 1.0f, dropped_input(xv.f32(), xv.numel(), p, seed, offset), in, av.f32(),
          in, 0.0f, h.f32(), r);
  k::gemm(false, true, rows, out, r, scale, h.f32(), r, bv.f32(), r, 1.0f, y.f32(), out);
  Var result;
  if (Node* n = x.tape()->record(result, y, "lora_linear", lora_linear_backward, {x, w, bias, a, b})) {
    n->saved[0] = h;
    n->f[0] = scale;
    n->f[1] = p;
    n->i[0] = int64_t(seed);
    n->i[1] = int64_t(offset);
  }
  return result;
}

}  // namespace tfm::ag
