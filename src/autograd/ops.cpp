#include "autograd/ops.h"

#include "autograd/op_util.h"
#include "core/error.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/loss.h"

namespace tfm::ag {

// ---- linear: y = x W^T + b;  dx = dy W,  dW += dy^T x,  db += sum_rows dy
Var linear(Var x, Var w, Var b) {
  const Tensor& xv = contiguous_input(x, "linear");
  const Tensor& wv = contiguous_input(w, "linear");
  int64_t in = wv.size(1), out = wv.size(0), rows = xv.numel() / in;
  TFM_CHECK(xv.size(-1) == in, "linear: input {} vs weight {}", xv.shape().str(), wv.shape().str());
  Tensor y = Tensor::empty(with_last(xv.shape(), out));
  k::gemm(false, true, rows, out, in, 1.0f, xv.f32(), in, wv.f32(), in, 0.0f, y.f32(), out);
  if (b.defined()) k::bias_add(y.f32(), contiguous_input(b, "linear").f32(), rows, out);
  Var r;
  x.tape()->record(r, y, "linear",
                   [](Tape& t, const Node& n) {
                     const Tensor& xv = t.value(n.in[0]);
                     const Tensor& wv = t.value(n.in[1]);
                     int64_t in = wv.size(1), out = wv.size(0), rows = xv.numel() / in;
                     const float* dy = out_grad(t, n);
                     if (float* dx = grad_ptr(t, n, 0))
                       k::gemm(false, false, rows, in, out, 1.0f, dy, out, wv.f32(), in, 1.0f, dx, in);
                     if (float* dw = grad_ptr(t, n, 1))
                       k::gemm(true, false, out, in, rows, 1.0f, dy, out, xv.f32(), in, 1.0f, dw, in);
                     if (float* db = grad_ptr(t, n, 2)) k::bias_grad(dy, db, rows, out);
                   },
                   {x, w, b});
  return r;
}

// ---- matmul: C = A B;  dA += dC B^T,  dB += A^T dC
Var matmul(Var a, Var b) {
  const Tensor& av = contiguous_input(a, "matmul");
  const Tensor& bv = contiguous_input(b, "matmul");
  TFM_CHECK(av.dim() == 2 && bv.dim() == 2 && av.size(1) == bv.size(0), "matmul: {} @ {}", av.shape().str(),
            bv.shape().str());
  int64_t M = av.size(0), K = av.size(1), N = bv.size(1);
  Tensor c = Tensor::empty({M, N});
  k::gemm(false, false, M, N, K, 1.0f, av.f32(), K, bv.f32(), N, 0.0f, c.f32(), N);
  Var r;
  a.tape()->record(r, c, "matmul",
                   [](Tape& t, const Node& n) {
                     const Tensor& av = t.value(n.in[0]);
                     const Tensor& bv = t.value(n.in[1]);
                     int64_t M = av.size(0), K = av.size(1), N = bv.size(1);
                     const float* dc = out_grad(t, n);
                     if (float* da = grad_ptr(t, n, 0))
                       k::gemm(false, true, M, K, N, 1.0f, dc, N, bv.f32(), N, 1.0f, da, K);
                     if (float* db = grad_ptr(t, n, 1))
                       k::gemm(true, false, K, N, M, 1.0f, av.f32(), K, dc, N, 1.0f, db, N);
                   },
                   {a, b});
  return r;
}

// ---- add
Var add(Var a, Var b) {
  return binary_elementwise(a, b, "add", k::add, [](Tape& t, const Node& n) {
    const float* dy = out_grad(t, n);
    int64_t size = t.value(n.out).numel();
    if (float* da = grad_ptr(t, n, 0)) k::accumulate(da, dy, size);
    if (float* db = grad_ptr(t, n, 1)) k::accumulate(db, dy, size);
  });
}

// ---- reshape: a view of the same storage; the gradient is the output's, viewed back
Var reshape(Var x, const Shape& shape) {
  const Tensor& xv = contiguous_input(x, "reshape");
  Var r;
  x.tape()->record(r, xv.view(shape), "reshape",
                   [](Tape& t, const Node& n) {
                     if (float* dx = grad_ptr(t, n, 0))
                       k::accumulate(dx, out_grad(t, n), t.value(n.out).numel());
                   },
                   {x});
  return r;
}

// ---- scale
Var scale(Var x, float s) {
  auto [r, node] = unary_elementwise(
      x, "scale", [s](const float* xp, float* y, int64_t size) { k::scale(xp, s, y, size); },
      [](Tape& t, const Node& n) {
        if (float* dx = grad_ptr(t, n, 0))
          k::accumulate_scaled(dx, out_grad(t, n), n.f[0], t.value(n.out).numel());
      });
  if (node) node->f[0] = s;
  return r;
}

// ---- add_positions: a constant table, so the gradient passes through unchanged
Var add_positions(Var x, const Tensor& table) {
  const Tensor& xv = contiguous_input(x, "add_positions");
  TFM_CHECK(xv.dim() == 3, "add_positions needs [batch, time, dim], got {}", xv.shape().str());
  int64_t time = xv.size(1), dim = xv.size(2);
  if (time > table.size(0))
    fail("sequence of {} positions exceeds the model's maximum length of {}", time, table.size(0));
  TFM_CHECK(table.size(1) == dim && table.is_contiguous(), "position table {} for dim {}", table.str(), dim);
  Tensor y = Tensor::empty(xv.shape());
  k::add_rows_periodic(xv.f32(), table.f32(), y.f32(), xv.size(0) * time, dim, time);
  Var r;
  x.tape()->record(r, y, "add_positions",
                   [](Tape& t, const Node& n) {
                     if (float* dx = grad_ptr(t, n, 0))
                       k::accumulate(dx, out_grad(t, n), t.value(n.out).numel());
                   },
                   {x});
  return r;
}

// ---- relu
Var relu(Var x) {
  return unary_elementwise(x, "relu", k::relu_forward,
                           [](Tape& t, const Node& n) {
                             const Tensor& y = t.value(n.out);
                             if (float* dx = grad_ptr(t, n, 0))
                               k::relu_backward(y.f32(), out_grad(t, n), dx, y.numel());
                           })
      .out;
}

// ---- dropout: the mask is regenerated from (seed, offset) in backward, never stored
Var dropout(Var x, float p, Rng* rng, bool training) {
  if (!training || p <= 0.0f) return x;
  TFM_CHECK(rng, "dropout needs an rng");
  const Tensor& xv = contiguous_input(x, "dropout");
  uint64_t offset = rng->take(uint64_t(xv.numel()));
  Tensor y = Tensor::empty(xv.shape());
  k::dropout_forward(xv.f32(), y.f32(), y.numel(), p, rng->seed(), offset);
  Var r;
  if (Node* n = x.tape()->record(r, y, "dropout",
                                 [](Tape& t, const Node& n) {
                                   if (float* dx = grad_ptr(t, n, 0))
                                     k::dropout_backward(out_grad(t, n), dx, t.value(n.out).numel(), n.f[0],
                                                         uint64_t(n.i[0]), uint64_t(n.i[1]));
                                 },
                                 {x})) {
    n->f[0] = p;
    n->i[0] = int64_t(rng->seed());
    n->i[1] = int64_t(offset);
  }
  return r;
}

// ---- layer_norm
Var layer_norm(Var x, Var gamma, Var beta, float eps, kernels::NormKind kind) {
  const Tensor& xv = contiguous_input(x, "layer_norm");
  int64_t cols = xv.size(-1), rows = xv.numel() / cols;
  TFM_CHECK(gamma.value().numel() == cols && beta.value().numel() == cols,
            "layer_norm: weight {} for input {}", gamma.value().str(), xv.str());
  Tensor y = Tensor::empty(xv.shape());
  Tensor mean = Tensor::empty({rows}), inv = Tensor::empty({rows});
  k::layer_norm_forward(kind, xv.f32(), gamma.value().f32(), beta.value().f32(), y.f32(), mean.f32(),
                        inv.f32(), rows, cols, eps);
  Var r;
  if (Node* n = x.tape()->record(r, y, "layer_norm",
                                 [](Tape& t, const Node& n) {
                                   const Tensor& xv = t.value(n.in[0]);
                                   int64_t cols = xv.size(-1), rows = xv.numel() / cols;
                                   k::layer_norm_backward(
                                       k::NormKind(n.i[0]), xv.f32(), t.value(n.in[1]).f32(),
                                       n.saved[0].f32(), n.saved[1].f32(), out_grad(t, n), grad_ptr(t, n, 0),
                                       grad_ptr(t, n, 1), grad_ptr(t, n, 2), rows, cols, n.f[0]);
                                 },
                                 {x, gamma, beta})) {
    n->saved[0] = mean;
    n->saved[1] = inv;
    n->f[0] = eps;
    n->i[0] = int64_t(kind);
  }
  return r;
}

// ---- embedding
Var embedding(Var table, const Tensor& ids, float scale, int64_t padding_idx) {
  const Tensor& w = contiguous_input(table, "embedding");
  TFM_CHECK(ids.dtype() == DType::I64 && ids.is_contiguous(),
            "embedding ids must be contiguous int64, got {}", ids.str());
  int64_t dim = w.size(1);
  Shape shape = ids.shape();
  shape.push_back(dim);
  Tensor y = Tensor::empty(shape);
  k::embedding_forward(w.f32(), w.size(0), dim, ids.data<int64_t>(), ids.numel(), scale, y.f32());
  Var r;
  if (Node* n = table.tape()->record(r, y, "embedding",
                                     [](Tape& t, const Node& n) {
                                       if (float* dw = grad_ptr(t, n, 0))
                                         k::embedding_backward(out_grad(t, n), n.saved[0].data<int64_t>(),
                                                               n.saved[0].numel(), t.value(n.in[0]).size(1),
                                                               n.f[0], dw, n.i[0]);
                                     },
                                     {table})) {
    n->saved[0] = ids;
    n->f[0] = scale;
    n->i[0] = padding_idx;
  }
  return r;
}

// ---- sum
Var sum(Var x) {
  const Tensor& xv = contiguous_input(x, "sum");
  double s = 0;
  const float* p = xv.f32();
  for (int64_t i = 0; i < xv.numel(); ++i) s += p[i];
  Tensor y = Tensor::full({1}, float(s));
  Var r;
  x.tape()->record(r, y, "sum",
                   [](Tape& t, const Node& n) {
                     float* dx = grad_ptr(t, n, 0);
                     if (!dx) return;
                     float g = out_grad(t, n)[0];
                     for (int64_t i = 0, e = t.value(n.in[0]).numel(); i < e; ++i) dx[i] += g;
                   },
                   {x});
  return r;
}

// ---- cross_entropy
Var cross_entropy(Var logits, const Tensor& labels, int64_t ignore_index, float smoothing) {
  const Tensor& z = contiguous_input(logits, "cross_entropy");
  int64_t classes = z.size(-1), rows = z.numel() / classes;
  TFM_CHECK(labels.dtype() == DType::I64 && labels.is_contiguous() && labels.numel() == rows,
            "cross_entropy: labels {} for logits {}", labels.str(), z.str());
  Tensor lse = Tensor::empty({rows});
  int64_t count = 0;
  double loss = k::cross_entropy_forward(z.f32(), labels.data<int64_t>(), rows, classes, ignore_index,
                                         smoothing, lse.f32(), &count);
  Tensor y = Tensor::full({1}, float(loss));
  Var r;
  if (Node* n = logits.tape()->record(r, y, "cross_entropy",
                                      [](Tape& t, const Node& n) {
                                        float* dz = grad_ptr(t, n, 0);
                                        if (!dz) return;
                                        const Tensor& z = t.value(n.in[0]);
                                        int64_t classes = z.size(-1), rows = z.numel() / classes;
                                        k::cross_entropy_backward(z.f32(), n.saved[0].data<int64_t>(),
                                                                  n.saved[1].f32(), rows, classes, n.i[0],
                                                                  n.f[0], n.i[1], out_grad(t, n)[0], dz);
                                      },
                                      {logits})) {
    n->saved[0] = labels;
    n->saved[1] = lse;
    n->f[0] = smoothing;
    n->i[0] = ignore_index;
    n->i[1] = count;
  }
  return r;
}

}  // namespace tfm::ag
