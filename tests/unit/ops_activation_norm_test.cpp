// gelu, silu, swiglu, mul, reshape and rms_norm: known values and finite-difference gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "autograd/ops.h"
#include "gradient_check.h"

namespace tfm::ag {
namespace {

using kernels::GeluKind;
using test::check_gradients;
using test::random_tensor;

Tensor values(std::initializer_list<float> v) {
  Tensor t = Tensor::empty_persistent({int64_t(v.size())});
  int64_t i = 0;
  for (float x : v) t.f32()[i++] = x;
  return t;
}

TEST(OpsActivation, KnownValues) {
  // Published values: GELU(1) = Phi(1) = 0.841344746...; its tanh form gives 0.841191990...;
  // SiLU(1) = sigmoid(1) = 0.731058578..., SiLU(-2) = -2 sigmoid(-2).
  Tape tape;
  Tape::Scope scope(tape);
  Var x = tape.leaf(values({1.0f, -1.0f, 0.0f, 3.0f}));
  Var erf = gelu(x, GeluKind::Erf), tanh_form = gelu(x, GeluKind::Tanh);
  EXPECT_NEAR(erf.value().f32()[0], 0.8413447460685429, 1e-6);
  EXPECT_NEAR(erf.value().f32()[1], -0.15865525393145707, 1e-6);
  EXPECT_EQ(erf.value().f32()[2], 0.0f);
  EXPECT_NEAR(erf.value().f32()[3], 2.9959503059, 1e-6);
  EXPECT_NEAR(tanh_form.value().f32()[0], 0.8411919906082768, 1e-6);
  EXPECT_NEAR(tanh_form.value().f32()[1], -0.15880800939172324, 1e-6);
  Var s = silu(tape.leaf(values({1.0f, -2.0f})));
  EXPECT_NEAR(s.value().f32()[0], 0.7310585786300049, 1e-6);
  EXPECT_NEAR(s.value().f32()[1], -2.0 / (1.0 + std::exp(2.0)), 1e-6);
  // swiglu(gate, up) = silu(gate) * up.
  Var sw = swiglu(tape.leaf(values({1.0f, -2.0f})), tape.leaf(values({2.0f, 0.5f})));
  EXPECT_NEAR(sw.value().f32()[0], 2 * 0.7310585786300049, 1e-6);
  EXPECT_NEAR(sw.value().f32()[1], 0.5 * -2.0 / (1.0 + std::exp(2.0)), 1e-6);
}

TEST(OpsActivation, Gradients) {
  std::mt19937 g(11);
  for (GeluKind kind : {GeluKind::Erf, GeluKind::Tanh})
    check_gradients(
        "gelu", {random_tensor({3, 7}, g, -3, 3)},
        [kind](Tape&, const std::vector<Var>& v) { return gelu(v[0], kind); }, 1e-2, 1e-3f);
  check_gradients(
      "silu", {random_tensor({3, 7}, g, -4, 4)}, [](Tape&, const std::vector<Var>& v) { return silu(v[0]); },
      1e-2, 1e-3f);
  check_gradients(
      "swiglu", {random_tensor({2, 3, 5}, g, -3, 3), random_tensor({2, 3, 5}, g)},
      [](Tape&, const std::vector<Var>& v) { return swiglu(v[0], v[1]); }, 1e-2, 1e-3f);
  check_gradients("mul", {random_tensor({4, 5}, g), random_tensor({4, 5}, g)},
                  [](Tape&, const std::vector<Var>& v) { return mul(v[0], v[1]); });
  // A reshaped value used again after the reshape: both gradients arrive.
  check_gradients("reshape", {random_tensor({2, 6}, g)}, [](Tape&, const std::vector<Var>& v) {
    return mul(reshape(v[0], {3, -1}), reshape(v[0], {3, 4}));
  });
}

TEST(OpsActivation, SwigluEqualsSiluTimesUp) {
  std::mt19937 g(12);
  Tape tape;
  Tape::Scope scope(tape);
  Var gate = tape.leaf(random_tensor({5, 9}, g, -3, 3)), up = tape.leaf(random_tensor({5, 9}, g));
  EXPECT_TRUE(tfm::test::expect_close("swiglu", swiglu(gate, up).value(), mul(silu(gate), up).value(), 1e-6));
}

TEST(OpsNorm, RmsNormKnownAnswer) {
  // x = [1, 2, 3, 4]: mean(x^2) = 7.5.
  Tape tape;
  Tape::Scope scope(tape);
  Tensor x = Tensor::empty({1, 4});
  for (int i = 0; i < 4; ++i) x.f32()[i] = float(i + 1);
  Var y = rms_norm(tape.leaf(x), tape.leaf(values({1.0f, 1.0f, 2.0f, -1.0f})), 1e-6f);
  double r = 1.0 / std::sqrt(7.5 + 1e-6);
  EXPECT_NEAR(y.value().f32()[0], 1 * r, 1e-6);
  EXPECT_NEAR(y.value().f32()[2], 2 * 3 * r, 1e-6);
  EXPECT_NEAR(y.value().f32()[3], -4 * r, 1e-6);
}

TEST(OpsNorm, RmsNormLongRowKeepsPrecision) {
  // 8192 equal values 100 + one row of mixed sign: y = gamma * x / rms exactly in closed form.
  Tape tape;
  Tape::Scope scope(tape);
  const int64_t n = 8192;
  Tensor x = Tensor::empty({1, n});
  for (int64_t i = 0; i < n; ++i) x.f32()[i] = i % 2 ? 100.0f : -100.0f;
  Var y = rms_norm(tape.leaf(x), tape.leaf(Tensor::full({n}, 1.0f)), 1e-5f);
  double want = 100.0 / std::sqrt(10000.0 + 1e-5);
  EXPECT_NEAR(y.value().f32()[1], want, 1e-6);
  EXPECT_NEAR(y.value().f32()[n - 2], -want, 1e-6);
}

TEST(OpsNorm, RmsNormGradients) {
  std::mt19937 g(13);
  for (float eps : {1e-6f, 0.5f})
    check_gradients(
        "rms_norm", {random_tensor({3, 2, 8}, g), random_tensor({8}, g)},
        [eps](Tape&, const std::vector<Var>& v) { return rms_norm(v[0], v[1], eps); }, 1e-2, 1e-3f);
}

TEST(OpsNorm, RmsNormParallelMatchesRowByRow) {
  // Enough rows for the parallel path (per-thread partial sums of dgamma) against one row at a time.
  std::mt19937 g(14);
  const int64_t rows = 300, cols = 64;
  Tensor x = random_tensor({rows, cols}, g), gamma = random_tensor({cols}, g),
         dy = random_tensor({rows, cols}, g);
  Tape tape;
  Tape::Scope scope(tape);
  Var xv = tape.leaf(x, true), gv = tape.leaf(gamma, true);
  tape.backward(rms_norm(xv, gv, 1e-6f), dy);
  Tensor dgamma = Tensor::zeros({cols}), dx = Tensor::zeros({rows, cols});
  for (int64_t r = 0; r < rows; ++r) {
    Tape t1;
    Tape::Scope s1(t1);
    Var xr = t1.leaf(x.narrow(0, r, 1).contiguous(), true), gr = t1.leaf(gamma, true);
    t1.backward(rms_norm(xr, gr, 1e-6f), dy.narrow(0, r, 1).contiguous());
    for (int64_t c = 0; c < cols; ++c) {
      dgamma.f32()[c] += gr.grad().f32()[c];
      dx.f32()[r * cols + c] = xr.grad().f32()[c];
    }
  }
  EXPECT_TRUE(tfm::test::expect_close("dgamma", gv.grad(), dgamma, 1e-6));
  EXPECT_TRUE(tfm::test::expect_close("dx", xv.grad(), dx, 1e-6));
}

}  // namespace
}  // namespace tfm::ag
