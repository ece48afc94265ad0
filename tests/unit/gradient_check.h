// Finite-difference gradient checking for autograd ops (shared by the op tests).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "test_support.h"

namespace tfm::ag::test {

inline Tensor random_tensor(const Shape& s, std::mt19937& g, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t = Tensor::empty_persistent(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = u(g);
  return t;
}

// A persistent int64 tensor holding `values`.
inline Tensor int_tensor(std::initializer_list<int64_t> values, const Shape& s) {
  Tensor t = Tensor::empty_persistent(s, DType::I64);
  int64_t i = 0;
  for (int64_t v : values) t.data<int64_t>()[i++] = v;
  return t;
}

// Builds the op's output from leaf vars for `inputs`.
using OpFn = std::function<Var(Tape&, const std::vector<Var>&)>;

inline double weighted_sum(const Tensor& out, const Tensor& w) {
  double s = 0;
  Tensor o = out.contiguous();
  for (int64_t i = 0; i < o.numel(); ++i) s += double(o.f32()[i]) * w.f32()[i];
  return s;
}

// Checks d/d inputs of L = sum(op(inputs) * W) (W random) against central differences.
inline void check_gradients(const std::string& name, std::vector<Tensor> inputs, const OpFn& op,
                            double tol = 1e-2, float h = 1e-2f) {
  std::mt19937 g(7);
  Tape tape;
  Tape::Scope scope(tape);
  std::vector<Var> vars;
  for (auto& x : inputs) vars.push_back(tape.leaf(x, true));
  Var out = op(tape, vars);
  Tensor w = random_tensor(out.shape(), g);
  tape.backward(out, w);
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor analytic = vars[k].grad().clone(true);
    Tensor numeric = Tensor::zeros_persistent(inputs[k].shape());
    float* x = inputs[k].f32();
    for (int64_t i = 0; i < inputs[k].numel(); ++i) {
      float saved = x[i];
      auto eval = [&](float v) {
        x[i] = v;
        Tape t2;
        Tape::Scope s2(t2);
        std::vector<Var> vs;
        for (auto& in : inputs) vs.push_back(t2.leaf(in, false));
        return weighted_sum(op(t2, vs).value(), w);
      };
      numeric.f32()[i] = float((eval(saved + h) - eval(saved - h)) / (2 * h));
      x[i] = saved;
    }
    EXPECT_TRUE(tfm::test::expect_close(name + " d/input" + std::to_string(k), analytic, numeric, tol));
  }
}

}  // namespace tfm::ag::test
