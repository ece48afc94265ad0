// Mixtral-style routing, the load-balancing loss, gather_rows / scatter_add_rows, and an MoE layer built
// from them against a per-token reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "autograd/ops.h"
#include "gradient_check.h"

namespace tfm::ag {
namespace {

using test::check_gradients;
using test::int_tensor;
using test::random_tensor;

Tensor logits_of(std::initializer_list<double> probs_up_to_scale, int64_t rows) {
  // Logits log(p): the softmax is p / sum(p).
  int64_t cols = int64_t(probs_up_to_scale.size()) / rows;
  Tensor t = Tensor::empty_persistent({rows, cols});
  int64_t i = 0;
  for (double p : probs_up_to_scale) t.f32()[i++] = float(std::log(p));
  return t;
}

TEST(OpsMoe, RouterTopKKnownAnswer) {
  // Probabilities (1, 2, 3, 4) / 10: top 2 = experts 3 and 2, renormalised 4/7 and 3/7.
  Tape tape;
  Tape::Scope scope(tape);
  Routing r = router_top_k(tape.leaf(logits_of({1, 2, 3, 4, 5, 1, 1, 3}, 2)), 2);
  EXPECT_EQ(r.experts.data<int64_t>()[0], 3);
  EXPECT_EQ(r.experts.data<int64_t>()[1], 2);
  EXPECT_NEAR(r.weights.value().f32()[0], 4.0 / 7, 1e-6);
  EXPECT_NEAR(r.weights.value().f32()[1], 3.0 / 7, 1e-6);
  // Second row (5, 1, 1, 3): experts 0 and 3, 5/8 and 3/8.
  EXPECT_EQ(r.experts.data<int64_t>()[2], 0);
  EXPECT_EQ(r.experts.data<int64_t>()[3], 3);
  EXPECT_NEAR(r.weights.value().f32()[2], 5.0 / 8, 1e-6);
  // Ties go to the lower index: (1, 1, 1, 1) picks 0 then 1.
  Routing tie = router_top_k(tape.leaf(Tensor::zeros({1, 4})), 2);
  EXPECT_EQ(tie.experts.data<int64_t>()[0], 0);
  EXPECT_EQ(tie.experts.data<int64_t>()[1], 1);
}

TEST(OpsMoe, RouterTopKGradient) {
  std::mt19937 g(51);
  check_gradients(
      "router_top_k", {random_tensor({6, 5}, g, -3, 3)},
      [](Tape&, const std::vector<Var>& v) { return router_top_k(v[0], 2).weights; }, 1e-2, 1e-3f);
}

// HF load_balancing_loss_func on the layers' logits concatenated, in double, as written there.
double reference_balance_loss(const std::vector<Tensor>& layers, int64_t top, const std::vector<int>& mask) {
  int64_t tokens = layers[0].size(0), experts = layers[0].size(1);
  std::vector<double> tokens_per_expert(size_t(top * experts), 0.0), prob_per_expert(size_t(experts), 0.0);
  double mask_sum = 0;
  for (const Tensor& z : layers)
    for (int64_t t = 0; t < tokens; ++t) {
      double m = mask.empty() ? 1.0 : mask[size_t(t)];
      mask_sum += m;
      std::vector<double> p(static_cast<size_t>(experts));
      double s = 0;
      for (int64_t e = 0; e < experts; ++e) s += (p[size_t(e)] = std::exp(double(z.at({t, e}))));
      for (auto& x : p) x /= s;
      std::vector<bool> taken(size_t(experts), false);
      for (int64_t k = 0; k < top; ++k) {
        int64_t best = -1;
        for (int64_t e = 0; e < experts; ++e)
          if (!taken[size_t(e)] && (best < 0 || p[size_t(e)] > p[size_t(best)])) best = e;
        taken[size_t(best)] = true;
        tokens_per_expert[size_t(k * experts + best)] += m;
      }
      for (int64_t e = 0; e < experts; ++e) prob_per_expert[size_t(e)] += m * p[size_t(e)];
    }
  double loss = 0;
  for (int64_t k = 0; k < top; ++k)
    for (int64_t e = 0; e < experts; ++e)
      loss += tokens_per_expert[size_t(k * experts + e)] / mask_sum * prob_per_expert[size_t(e)] / mask_sum;
  return loss * double(experts);
}

TEST(OpsMoe, LoadBalancingKnownAnswer) {
  // Two tokens, 4 experts, top 1, one layer. Token 0: p = (.1, .2, .3, .4) -> expert 3; token 1:
  // p = (.5, .1, .1, .3) -> expert 0. F = (.5, 0, 0, .5), P = (.3, .15, .2, .35):
  // loss = 4 * (.5 * .3 + .5 * .35) = 1.3.
  Tape tape;
  Tape::Scope scope(tape);
  Var z = tape.leaf(logits_of({1, 2, 3, 4, 5, 1, 1, 3}, 2));
  EXPECT_NEAR(load_balancing_loss(std::vector<Var>{z}, 1, Tensor()).value().item(), 1.3, 1e-6);
  // Masking token 1 leaves token 0 alone: F = (0, 0, 0, 1), P = p0: loss = 4 * .4.
  EXPECT_NEAR(load_balancing_loss(std::vector<Var>{z}, 1, int_tensor({1, 0}, {2})).value().item(), 1.6, 1e-6);
  EXPECT_THROW(load_balancing_loss(std::vector<Var>{z}, 1, int_tensor({0, 0}, {2})), Error);
}

TEST(OpsMoe, LoadBalancingMatchesConcatenatedLayers) {
  std::mt19937 g(52);
  std::vector<Tensor> layers{random_tensor({10, 4}, g, -2, 2), random_tensor({10, 4}, g, -2, 2),
                             random_tensor({10, 4}, g, -2, 2)};
  std::vector<int> mask{0, 0, 1, 1, 1, 1, 1, 1, 1, 0};
  Tensor mask_t = Tensor::empty_persistent({10}, DType::U8);
  for (int i = 0; i < 10; ++i) mask_t.data<uint8_t>()[i] = uint8_t(mask[size_t(i)]);
  Tape tape;
  Tape::Scope scope(tape);
  std::vector<Var> vars;
  for (auto& l : layers) vars.push_back(tape.leaf(l));
  EXPECT_NEAR(load_balancing_loss(vars, 2, mask_t).value().item(), reference_balance_loss(layers, 2, mask),
              1e-6);
  EXPECT_NEAR(load_balancing_loss(vars, 2, Tensor()).value().item(), reference_balance_loss(layers, 2, {}),
              1e-6);
  // The gradient flows through the probabilities only (the top-k counts are constants, as in PyTorch).
  check_gradients(
      "load_balancing_loss", layers,
      [&](Tape&, const std::vector<Var>& v) { return load_balancing_loss(v, 2, mask_t); }, 1e-2, 1e-3f);
}

TEST(OpsMoe, GroupByExpert) {
  Tensor experts = int_tensor({2, 0, 0, 1, 2, 1}, {3, 2});
  std::vector<ExpertBatch> groups = group_by_expert(experts, 4);
  ASSERT_EQ(groups.size(), 4u);
  auto ints = [](const Tensor& t) {
    return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
  };
  EXPECT_EQ(ints(groups[0].tokens), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ints(groups[0].slots), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ints(groups[1].tokens), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ints(groups[2].slots), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(groups[3].tokens.numel(), 0);
  EXPECT_THROW(group_by_expert(experts, 2), Error);
}

TEST(OpsMoe, GatherScatterRows) {
  Tape tape;
  Tape::Scope scope(tape);
  Tensor x = Tensor::empty({3, 2});
  for (int i = 0; i < 6; ++i) x.f32()[i] = float(i);
  Var rows = gather_rows(tape.leaf(x), int_tensor({2, 0, 2}, {3}));
  EXPECT_EQ(rows.value().at({0, 1}), 5.0);
  EXPECT_EQ(rows.value().at({1, 0}), 0.0);
  // Rows 0 and 2 both land on output row 1: 2 * (4, 5) + 0.5 * (4, 5).
  Tensor w = Tensor::empty({3});
  w.f32()[0] = 2.0f;
  w.f32()[1] = -1.0f;
  w.f32()[2] = 0.5f;
  Var out = scatter_add_rows(rows, int_tensor({1, 3, 1}, {3}), 4, tape.leaf(w));
  EXPECT_EQ(out.value().at({1, 0}), 10.0);
  EXPECT_EQ(out.value().at({1, 1}), 12.5);
  EXPECT_EQ(out.value().at({3, 1}), -1.0);
  EXPECT_EQ(out.value().at({0, 0}), 0.0);
  EXPECT_THROW(gather_rows(tape.leaf(x), int_tensor({3}, {1})), Error);
  EXPECT_THROW(scatter_add_rows(rows, int_tensor({1, 4, 1}, {3}), 4), Error);

  std::mt19937 g(53);
  Tensor idx = int_tensor({1, 0, 1, 3}, {4});
  check_gradients("gather_rows", {random_tensor({4, 3}, g)},
                  [&](Tape&, const std::vector<Var>& v) { return gather_rows(v[0], idx); });
  check_gradients("scatter_add_rows", {random_tensor({4, 3}, g), random_tensor({4}, g)},
                  [&](Tape&, const std::vector<Var>& v) { return scatter_add_rows(v[0], idx, 5, v[1]); });
}

// An MoE layer with linear experts: y_t = sum_j w_tj (W_e x_t), e = the token's j-th expert.
Var moe_layer(Var x, Var router, const std::vector<Var>& experts, int top) {
  int64_t tokens = x.value().size(0);
  Routing r = router_top_k(linear(x, router), top);
  Var flat_weights = reshape(r.weights, {tokens * top, 1});
  Var y;
  std::vector<ExpertBatch> groups = group_by_expert(r.experts, int64_t(experts.size()));
  for (size_t e = 0; e < experts.size(); ++e) {
    if (groups[e].tokens.numel() == 0) continue;
    Var out = linear(gather_rows(x, groups[e].tokens), experts[e]);
    Var part = scatter_add_rows(out, groups[e].tokens, tokens, gather_rows(flat_weights, groups[e].slots));
    y = y.defined() ? add(y, part) : part;
  }
  return y;
}

TEST(OpsMoe, ComposedLayerMatchesPerTokenReference) {
  std::mt19937 g(54);
  const int64_t tokens = 7, dim = 3, experts = 4;
  Tensor x = random_tensor({tokens, dim}, g), router = random_tensor({experts, dim}, g, -2, 2);
  std::vector<Tensor> w;
  for (int e = 0; e < experts; ++e) w.push_back(random_tensor({2, dim}, g));
  Tape tape;
  Tape::Scope scope(tape);
  std::vector<Var> ev;
  for (auto& t : w) ev.push_back(tape.leaf(t));
  Var y = moe_layer(tape.leaf(x), tape.leaf(router), ev, 2);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> z(experts), p(experts);
    double s = 0;
    for (int64_t e = 0; e < experts; ++e) {
      for (int64_t d = 0; d < dim; ++d) z[size_t(e)] += router.at({e, d}) * x.at({t, d});
      s += (p[size_t(e)] = std::exp(z[size_t(e)]));
    }
    int64_t a = int64_t(std::max_element(p.begin(), p.end()) - p.begin());
    double second = -1;
    int64_t b = -1;
    for (int64_t e = 0; e < experts; ++e)
      if (e != a && p[size_t(e)] > second) second = p[size_t(b = e)];
    for (int64_t o = 0; o < 2; ++o) {
      double want = 0;
      for (int64_t e : {a, b}) {
        double h = 0;
        for (int64_t d = 0; d < dim; ++d) h += w[size_t(e)].at({o, d}) * x.at({t, d});
        want += p[size_t(e)] / (p[size_t(a)] + p[size_t(b)]) * h;
      }
      EXPECT_NEAR(y.value().at({t, o}), want, 1e-5);
    }
  }
  std::vector<Tensor> inputs{x, router};
  inputs.insert(inputs.end(), w.begin(), w.end());
  check_gradients(
      "moe_layer", inputs,
      [](Tape&, const std::vector<Var>& v) {
        return moe_layer(v[0], v[1], std::vector<Var>(v.begin() + 2, v.end()), 2);
      },
      1e-2, 1e-3f);
}

}  // namespace
}  // namespace tfm::ag
