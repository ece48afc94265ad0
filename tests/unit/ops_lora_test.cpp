// lora_linear() (autograd/ops.h): the fused linear layer + LoRA adapter against the same computation
// composed of separate ops (linear, dropout, two more linear layers, a scale and a sum), and its gradients
// against finite differences, with and without dropout.
#include <gtest/gtest.h>

#include <random>

#include "autograd/ops.h"
#include "gradient_check.h"

namespace tfm::ag {
namespace {

using test::check_gradients;
using test::random_tensor;

struct Inputs {
  Tensor x, w, bias, a, b;
};

Inputs make_inputs(std::mt19937& g) {
  return {random_tensor({2, 5, 4}, g), random_tensor({6, 4}, g), random_tensor({6}, g),
          random_tensor({3, 4}, g), random_tensor({6, 3}, g)};
}

TEST(OpsLora, EqualsTheComposedOpsForwardAndBackward) {
  std::mt19937 g(51);
  const Inputs in = make_inputs(g);
  const Tensor dy = random_tensor({2, 5, 6}, g);  // d loss / d output
  for (float p : {0.0f, 0.4f}) {
    std::vector<Tensor> values, grads;
    for (bool fused : {true, false}) {
      Tape tape;
      Tape::Scope scope(tape);
      Rng rng(9);
      std::vector<Var> v;
      for (const Tensor& t : {in.x, in.w, in.bias, in.a, in.b}) v.push_back(tape.leaf(t, true));
      Var out = fused ? lora_linear(v[0], v[1], v[2], v[3], v[4], 2.5f, p, &rng, true)
                      : add(linear(v[0], v[1], v[2]),
                            linear(scale(linear(dropout(v[0], p, &rng, true), v[3]), 2.5f), v[4]));
      tape.backward(out, dy);
      values.push_back(out.value().clone(true));
      for (const Var& x : v) grads.push_back(x.grad().clone(true));
    }
    const std::string tag = "p " + std::to_string(p);
    EXPECT_TRUE(tfm::test::expect_close(tag + " forward", values[0], values[1], 1e-6));
    for (size_t i = 0; i < 5; ++i)
      EXPECT_TRUE(tfm::test::expect_close(tag + " grad " + std::to_string(i), grads[i], grads[5 + i], 1e-5));
  }
}

TEST(OpsLora, GradientsMatchFiniteDifferences) {
  std::mt19937 g(52);
  const Inputs in = make_inputs(g);
  for (float p : {0.0f, 0.3f})
    check_gradients("lora_linear p " + std::to_string(p), {in.x, in.w, in.bias, in.a, in.b},
                    [&](Tape&, const std::vector<Var>& v) {
                      Rng rng(4);  // the same dropout mask at every evaluation
                      return lora_linear(v[0], v[1], v[2], v[3], v[4], 1.5f, p, &rng, true);
                    });
}

TEST(OpsLora, NoDropoutOutsideTraining) {
  std::mt19937 g(53);
  const Inputs in = make_inputs(g);
  Tape tape;
  Tape::Scope scope(tape);
  Rng rng(1);
  std::vector<Var> v;
  for (const Tensor& t : {in.x, in.w, in.bias, in.a, in.b}) v.push_back(tape.leaf(t));
  const Tensor eval = lora_linear(v[0], v[1], v[2], v[3], v[4], 2.0f, 0.5f, &rng, false).value();
  const Tensor plain = lora_linear(v[0], v[1], v[2], v[3], v[4], 2.0f, 0.0f, nullptr, true).value();
  EXPECT_TRUE(tfm::test::expect_close("eval = no dropout", eval, plain, 0.0));
}

}  // namespace
}  // namespace tfm::ag
