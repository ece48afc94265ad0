// Helpers shared by the files that implement the ops of autograd/ops.h (not part of the public API).
#pragma once

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "core/error.h"

namespace tfm::ag::detail {

// The value of v, checked to be defined, contiguous and float32.
inline Tensor contiguous_input(const Var& v, const char* op) {
  TFM_CHECK(v.defined(), "{}: undefined input", op);
  Tensor t = v.value();
  TFM_CHECK(t.is_contiguous(), "{} needs a contiguous input, got {}", op, t.str());
  TFM_CHECK(t.dtype() == DType::F32, "{} needs float32, got {}", op, t.str());
  return t;
}

// The gradient buffer of input `slot` of node n, or nullptr when it needs none.
inline float* grad_ptr(Tape& t, const Node& n, int slot) {
  int32_t id = n.in[slot];
  return t.requires_grad(id) ? t.grad(id).f32() : nullptr;
}

inline const float* out_grad(Tape& t, const Node& n) { return t.grad(n.out).f32(); }

inline Shape with_last(const Shape& s, int64_t last) {
  Shape r = s;
  r[r.size() - 1] = last;
  return r;
}

inline void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  TFM_CHECK(a.shape() == b.shape(), "{}: shapes {} and {} differ", op, a.shape().str(), b.shape().str());
}

// An index tensor: contiguous int64 with values in [0, limit); names the first bad entry.
inline void check_indices(const Tensor& index, int64_t limit, const char* op) {
  TFM_CHECK(index.defined() && index.dtype() == DType::I64 && index.is_contiguous(),
            "{}: index must be contiguous int64, got {}", op, index.defined() ? index.str() : "undefined");
  const int64_t* p = index.data<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    if (p[i] < 0 || p[i] >= limit) fail("{}: index {} at position {} is outside [0, {})", op, p[i], i, limit);
}

// A recorded op's output and its node (null when the tape records nothing), for the op's constants.
struct Recorded {
  Var out;
  Node* node = nullptr;
};

// y = forward(x) elementwise (y shaped as x); `backward` reads the node, whose one input is x.
template <class Forward>
Recorded unary_elementwise(Var x, const char* op, Forward forward, BackwardFn backward) {
  const Tensor& xv = contiguous_input(x, op);
  Tensor y = Tensor::empty(xv.shape());
  forward(xv.f32(), y.f32(), y.numel());
  Recorded r;
  r.node = x.tape()->record(r.out, y, op, backward, {x});
  return r;
}

// y = forward(a, b) elementwise over two inputs of one shape; `backward` reads the node, inputs {a, b}.
inline Var binary_elementwise(Var a, Var b, const char* op,
                              void (*forward)(const float* a, const float* b, float* y, int64_t n),
                              BackwardFn backward) {
  const Tensor& av = contiguous_input(a, op);
  const Tensor& bv = contiguous_input(b, op);
  check_same_shape(av, bv, op);
  Tensor y = Tensor::empty(av.shape());
  forward(av.f32(), bv.f32(), y.f32(), y.numel());
  Var r;
  a.tape()->record(r, y, op, backward, {a, b});
  return r;
}

}  // namespace tfm::ag::detail

// Every ops file names the kernels k:: and calls these helpers unqualified.
namespace tfm::ag {
namespace k = tfm::kernels;
using detail::binary_elementwise;
using detail::check_indices;
using detail::check_same_shape;
using detail::contiguous_input;
using detail::grad_ptr;
using detail::out_grad;
using detail::unary_elementwise;
using detail::with_last;
}  // namespace tfm::ag
