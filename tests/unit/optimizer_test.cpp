#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "core/error.h"
#include "test_support.h"

namespace tfm::train {
namespace {

// torch.optim.Adam / AdamW (PyTorch 1.13) written out in double, one element at a time.
class ReferenceAdam {
 public:
  ReferenceAdam(std::vector<double> p, const AdamOptions& o)
      : p_(std::move(p)), m_(p_.size(), 0.0), v_(p_.size(), 0.0), o_(o) {}

  void step(const float* grad, double lr) {
    ++t_;
    const double b1 = o_.beta1, b2 = o_.beta2, eps = o_.eps, wd = o_.weight_decay;
    const double bias_correction1 = 1 - std::pow(b1, double(t_));
    const double bias_correction2 = 1 - std::pow(b2, double(t_));
    for (size_t i = 0; i < p_.size(); ++i) {
      double g = grad[i];
      if (o_.decoupled)
        p_[i] *= 1 - lr * wd;
      else
        g += wd * p_[i];
      m_[i] = b1 * m_[i] + (1 - b1) * g;
      v_[i] = b2 * v_[i] + (1 - b2) * g * g;
      const double denom = std::sqrt(v_[i]) / std::sqrt(bias_correction2) + eps;
      p_[i] -= lr / bias_correction1 * m_[i] / denom;
    }
  }
  const std::vector<double>& p() const { return p_; }
  const std::vector<double>& m() const { return m_; }
  const std::vector<double>& v() const { return v_; }

 private:
  std::vector<double> p_, m_, v_;
  AdamOptions o_;
  int64_t t_ = 0;
};

Tensor to_tensor(const std::vector<double>& x) {
  Tensor t = Tensor::empty({int64_t(x.size())}, DType::F64);
  std::memcpy(t.raw(), x.data(), x.size() * sizeof(double));
  return t;
}

std::vector<double> to_vector(const Tensor& t) {
  std::vector<double> x(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) x[size_t(i)] = t.f32()[i];
  return x;
}

void fill_normal(const Tensor& t, std::mt19937& rng, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = normal(rng);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// A small model: parameters of different sizes, one large enough for the parallel path.
struct Params {
  std::vector<std::unique_ptr<Parameter>> owned;
  ParameterList list;

  explicit Params(uint32_t seed) {
    std::mt19937 rng(seed);
    const Shape shapes[] = {{3, 5}, {40000}, {7}};
    for (int i = 0; i < 3; ++i) {
      owned.push_back(std::make_unique<Parameter>("layer" + std::to_string(i) + ".weight", shapes[i]));
      fill_normal(owned.back()->value, rng, 1.0f);
      list.push_back(owned.back().get());
    }
  }
  // Gradients of very different scales, as real layers have.
  void random_grads(std::mt19937& rng) {
    const float scales[] = {1e-3f, 1.0f, 30.0f};
    for (size_t i = 0; i < list.size(); ++i) fill_normal(list[i]->grad, rng, scales[i]);
  }
};

AdamOptions transformer_options(bool decoupled) {
  AdamOptions o;
  o.beta1 = 0.9f;
  o.beta2 = 0.98f;
  o.eps = 1e-9f;
  o.weight_decay = 0.1f;
  o.decoupled = decoupled;
  return o;
}

double lr_at(int step) { return 1e-3 * (step + 1) / 4.0; }

void expect_matches_reference(bool decoupled) {
  const AdamOptions options = transformer_options(decoupled);
  Params params(7);
  std::vector<ReferenceAdam> reference;
  for (Parameter* p : params.list) reference.emplace_back(to_vector(p->value), options);
  Adam adam(params.list, options);
  std::mt19937 rng(11);
  for (int step = 0; step < 8; ++step) {
    params.random_grads(rng);
    const float lr = float(lr_at(step));
    adam.step(lr);
    for (size_t i = 0; i < reference.size(); ++i) reference[i].step(params.list[i]->grad.f32(), lr);
  }
  const auto state = adam.state();
  for (size_t i = 0; i < reference.size(); ++i) {
    const std::string& name = params.list[i]->name;
    EXPECT_TRUE(
        test::expect_close(name, params.list[i]->value.view({-1}), to_tensor(reference[i].p()), 1e-6));
    EXPECT_TRUE(test::expect_close(name + ".exp_avg", state.at(name + ".exp_avg").view({-1}),
                                   to_tensor(reference[i].m()), 1e-6));
    EXPECT_TRUE(test::expect_close(name + ".exp_avg_sq", state.at(name + ".exp_avg_sq").view({-1}),
                                   to_tensor(reference[i].v()), 1e-6));
  }
  EXPECT_EQ(adam.steps(), 8);
}

TEST(Adam, MatchesDoublePrecisionReference) { expect_matches_reference(false); }

TEST(AdamW, MatchesDoublePrecisionReference) { expect_matches_reference(true); }

TEST(Adam, FirstStepMovesEachWeightByLearningRate) {
  // After one step m/sqrt(v) is g/|g| once bias-corrected, so every weight moves by lr * sign(g).
  Parameter p("w", {6});
  const float grads[] = {3.0f, -0.02f, 1e-4f, -50.0f, 0.5f, -7.0f};
  for (int i = 0; i < 6; ++i) {
    p.value.f32()[i] = 0.25f * float(i);
    p.grad.f32()[i] = grads[i];
  }
  Tensor before = p.value.clone();
  AdamOptions options = transformer_options(false);
  options.weight_decay = 0.0f;
  Adam adam({&p}, options);
  const float lr = 1e-3f;
  adam.step(lr);
  for (int i = 0; i < 6; ++i) {
    const double moved = double(p.value.f32()[i]) - double(before.f32()[i]);
    EXPECT_NEAR(moved, -lr * std::copysign(1.0, grads[i]), 2e-7) << "element " << i;
  }
}

TEST(AdamW, DiffersFromAdamExactlyByDecoupledDecay) {
  // AdamW(wd) from p is Adam without decay from p * (1 - lr * wd): the moments never see the decay.
  AdamOptions decoupled = transformer_options(true);
  AdamOptions plain = transformer_options(false);
  plain.weight_decay = 0.0f;
  Params a(3), b(3);
  Adam adamw(a.list, decoupled), adam(b.list, plain);
  std::mt19937 rng(5);
  for (int step = 0; step < 6; ++step) {
    a.random_grads(rng);
    for (size_t i = 0; i < a.list.size(); ++i) b.list[i]->grad.copy_(a.list[i]->grad);
    const float lr = float(lr_at(step));
    const float decay = float(1.0 - double(lr) * double(decoupled.weight_decay));
    for (Parameter* p : b.list)
      for (int64_t j = 0; j < p->value.numel(); ++j) p->value.f32()[j] *= decay;
    adamw.step(lr);
    adam.step(lr);
  }
  const auto state_w = adamw.state(), state = adam.state();
  for (const auto& [name, tensor] : state_w) EXPECT_TRUE(bitwise_equal(tensor, state.at(name))) << name;
  for (size_t i = 0; i < a.list.size(); ++i)
    EXPECT_TRUE(test::expect_close(a.list[i]->name, a.list[i]->value, b.list[i]->value, 1e-6));
}

TEST(Adam, CoupledDecayIsL2InTheGradient) {
  // Adam(wd) on g is Adam without decay on g + wd * p.
  AdamOptions coupled = transformer_options(false);
  AdamOptions plain = coupled;
  plain.weight_decay = 0.0f;
  Params a(4), b(4);
  Adam with_decay(a.list, coupled), without(b.list, plain);
  std::mt19937 rng(6);
  for (int step = 0; step < 6; ++step) {
    a.random_grads(rng);
    for (size_t i = 0; i < a.list.size(); ++i) {
      const Parameter& pa = *a.list[i];
      Parameter& pb = *b.list[i];
      for (int64_t j = 0; j < pa.value.numel(); ++j)
        pb.grad.f32()[j] = float(double(pa.grad.f32()[j]) + double(coupled.weight_decay) * pb.value.f32()[j]);
    }
    with_decay.step(float(lr_at(step)));
    without.step(float(lr_at(step)));
  }
  for (size_t i = 0; i < a.list.size(); ++i)
    EXPECT_TRUE(test::expect_close(a.list[i]->name, a.list[i]->value, b.list[i]->value, 1e-6));
}

TEST(Adam, StateRoundTripContinuesBitwise) {
  const AdamOptions options = transformer_options(true);
  Params uninterrupted(9), resumed(9);
  Adam first(uninterrupted.list, options);
  std::mt19937 rng(21);
  for (int step = 0; step < 4; ++step) {
    uninterrupted.random_grads(rng);
    first.step(float(lr_at(step)));
  }
  // "Checkpoint": weights and a copy of the optimizer state, loaded into a fresh optimizer.
  std::map<std::string, Tensor> saved;
  for (const auto& [name, tensor] : first.state()) saved.emplace(name, tensor.clone(true));
  for (size_t i = 0; i < resumed.list.size(); ++i) resumed.list[i]->value.copy_(uninterrupted.list[i]->value);
  Adam second(resumed.list, options);
  second.load_state(saved, first.steps());
  EXPECT_EQ(second.steps(), 4);
  for (int step = 4; step < 8; ++step) {
    std::mt19937 same = rng;
    uninterrupted.random_grads(rng);
    resumed.random_grads(same);
    first.step(float(lr_at(step)));
    second.step(float(lr_at(step)));
  }
  for (size_t i = 0; i < resumed.list.size(); ++i)
    EXPECT_TRUE(bitwise_equal(resumed.list[i]->value, uninterrupted.list[i]->value)) << resumed.list[i]->name;
  const auto state_a = first.state(), state_b = second.state();
  for (const auto& [name, tensor] : state_a) EXPECT_TRUE(bitwise_equal(tensor, state_b.at(name))) << name;
}

// Passes when fn throws a tfm::Error whose message contains `part`.
::testing::AssertionResult throws_containing(const std::function<void()>& fn, const std::string& part) {
  try {
    fn();
  } catch (const Error& e) {
    if (std::string(e.what()).find(part) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "error \"" << e.what() << "\" lacks \"" << part << "\"";
  }
  return ::testing::AssertionFailure() << "no error thrown; expected one containing \"" << part << "\"";
}

TEST(Adam, LoadStateRejectsMissingUnexpectedAndMisshapenTensors) {
  Params params(1);
  Adam adam(params.list, AdamOptions{});
  const auto good = adam.state();

  auto missing = good;
  missing.erase("layer2.weight.exp_avg_sq");
  EXPECT_TRUE(
      throws_containing([&] { adam.load_state(missing, 3); }, "'layer2.weight.exp_avg_sq' is missing"));

  auto extra = good;
  extra.emplace("head.weight.exp_avg", Tensor::zeros({2}));
  EXPECT_TRUE(
      throws_containing([&] { adam.load_state(extra, 3); }, "unexpected tensor 'head.weight.exp_avg'"));

  auto misshapen = good;
  misshapen["layer0.weight.exp_avg"] = Tensor::zeros({5, 3});
  EXPECT_TRUE(throws_containing([&] { adam.load_state(misshapen, 3); },
                                "'layer0.weight.exp_avg': shape [5, 3] expected [3, 5]"));
  EXPECT_EQ(adam.steps(), 0) << "a rejected state must leave the optimizer unchanged";
}

TEST(Adam, FrozenParametersAreUntouchedAndStateless) {
  Params params(2);
  params.list[1]->trainable = false;
  Tensor frozen_before = params.list[1]->value.clone();
  Adam adam(params.list, transformer_options(true));
  std::mt19937 rng(8);
  for (int step = 0; step < 3; ++step) {
    params.random_grads(rng);
    adam.step(1e-2f);
  }
  EXPECT_TRUE(bitwise_equal(params.list[1]->value, frozen_before));
  const auto state = adam.state();
  EXPECT_EQ(state.size(), 4u);
  EXPECT_EQ(state.count("layer1.weight.exp_avg"), 0u);
  EXPECT_EQ(state.count("layer1.weight.exp_avg_sq"), 0u);
  EXPECT_EQ(state.count("layer0.weight.exp_avg"), 1u);
  adam.load_state(state, adam.steps());  // the frozen parameter needs no state to resume
  params.list[1]->trainable = true;
  EXPECT_TRUE(
      throws_containing([&] { adam.step(1e-2f); }, "'layer1.weight' was frozen when the optimizer was made"));
  EXPECT_EQ(adam.steps(), 3);
}

TEST(Adam, ZeroGradZeroesEveryGradient) {
  Params params(3);
  std::mt19937 rng(1);
  params.random_grads(rng);
  Adam adam(params.list, AdamOptions{});
  adam.zero_grad();
  for (const Parameter* p : params.list)
    for (int64_t i = 0; i < p->grad.numel(); ++i) ASSERT_EQ(p->grad.f32()[i], 0.0f) << p->name;
}

TEST(Adam, RejectsDuplicateNamesAndMismatchedGradients) {
  Parameter a("w", {2}), b("w", {3});
  EXPECT_TRUE(throws_containing([&] { Adam({&a, &b}, AdamOptions{}); }, "'w' listed twice"));
  Parameter c("c", {2, 2});
  c.grad = Tensor::zeros_persistent({4});
  EXPECT_TRUE(throws_containing([&] { Adam({&c}, AdamOptions{}); },
                                "parameter 'c': grad shape [4] differs from value shape [2, 2]"));
}

TEST(ClipGradNorm, ThreeFourFiveTriangle) {
  Parameter p("w", {2});
  p.grad.f32()[0] = 3.0f;
  p.grad.f32()[1] = 4.0f;
  EXPECT_FLOAT_EQ(clip_grad_norm({&p}, 1.0f), 5.0f);
  const double coef = 1.0 / (5.0 + 1e-6);
  EXPECT_NEAR(p.grad.f32()[0], 3.0 * coef, 1e-7);
  EXPECT_NEAR(p.grad.f32()[1], 4.0 * coef, 1e-7);
  EXPECT_LT(p.grad.f32()[0], 0.6f);  // the 1e-6 term makes the clipped norm just below max_norm
}

TEST(ClipGradNorm, NormAcrossParametersAndNoScalingBelowMax) {
  Parameter a("a", {1}), b("b", {2});
  a.grad.f32()[0] = 2.0f;
  b.grad.f32()[0] = 3.0f;
  b.grad.f32()[1] = 6.0f;  // global norm sqrt(4 + 9 + 36) = 7
  EXPECT_FLOAT_EQ(clip_grad_norm({&a, &b}, 10.0f), 7.0f);
  EXPECT_EQ(a.grad.f32()[0], 2.0f);
  EXPECT_EQ(b.grad.f32()[1], 6.0f);
}

TEST(ClipGradNorm, LargeGradientsAccumulateInDouble) {
  // 1e6 elements of 1e3: sum of squares 1e12 is far beyond float's exact integers.
  Parameter p("big", {1000000});
  p.grad.fill_(1e3f);
  EXPECT_FLOAT_EQ(clip_grad_norm({&p}, 2e6f), 1e6f);
  EXPECT_EQ(grad_norm({&p}), 1e6);
}

TEST(ClipGradNorm, FrozenParametersDoNotCount) {
  Parameter a("a", {1}), frozen("frozen", {1});
  a.grad.f32()[0] = 4.0f;
  frozen.grad.f32()[0] = 3.0f;
  frozen.trainable = false;
  EXPECT_FLOAT_EQ(clip_grad_norm({&a, &frozen}, 1.0f), 4.0f);
  EXPECT_EQ(frozen.grad.f32()[0], 3.0f);
}

TEST(ClipGradNorm, NonFiniteNormIsReturnedAndGradientsLeftAlone) {
  Parameter p("w", {2});
  p.grad.f32()[0] = NAN;
  p.grad.f32()[1] = 4.0f;
  EXPECT_TRUE(std::isnan(clip_grad_norm({&p}, 1.0f)));
  EXPECT_EQ(p.grad.f32()[1], 4.0f);
  p.grad.f32()[0] = INFINITY;
  EXPECT_TRUE(std::isinf(clip_grad_norm({&p}, 1.0f)));
}

// Loss scaling: gradients of the loss times S = 1024 are unscaled by 1/S in the clipping pass, and the
// norm is that of the unscaled gradients; with max_norm infinite they are only unscaled.
TEST(ClipGradNorm, UnscalesLossScaledGradients) {
  Parameter p("w", {2});
  p.grad.f32()[0] = 3.0f * 1024;
  p.grad.f32()[1] = 4.0f * 1024;
  EXPECT_FLOAT_EQ(clip_grad_norm({&p}, 1.0f, 1.0f / 1024), 5.0f);
  const double coef = 1.0 / (5.0 + 1e-6);
  EXPECT_NEAR(p.grad.f32()[0], 3.0 * coef, 1e-6);
  EXPECT_NEAR(p.grad.f32()[1], 4.0 * coef, 1e-6);
  p.grad.f32()[0] = 3.0f * 1024;
  p.grad.f32()[1] = 4.0f * 1024;
  EXPECT_FLOAT_EQ(clip_grad_norm({&p}, INFINITY, 1.0f / 1024), 5.0f);
  EXPECT_EQ(p.grad.f32()[0], 3.0f);
  EXPECT_EQ(p.grad.f32()[1], 4.0f);
}

TEST(ClipGradNorm, RejectsNonPositiveMax) {
  Parameter p("w", {2});
  EXPECT_TRUE(throws_containing([&] { clip_grad_norm({&p}, 0.0f); }, "max_norm must be positive"));
}

}  // namespace
}  // namespace tfm::train
