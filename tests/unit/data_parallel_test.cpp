// Data parallelism's pieces that need no second process: backward's hooks fire when a gradient is complete,
// the pairwise order of sums (dist::pairwise_sum, GradientSync's shards), and the flat gradient buffer.
// Runs across processes are in tests/e2e/dist_train_test.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <map>

#include "autograd/ops.h"
#include "dist/communicator.h"
#include "dist/single_process.h"
#include "train/data_parallel.h"

namespace tfm {
namespace {

Tensor filled(const Shape& shape, float start, float step) {
  Tensor t = Tensor::empty_persistent(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = start + step * float(i % 7) - 0.1f * float(i % 3);
  return t;
}

// w1 is read twice (first and last), w2 once, w3 by no node: each is reported once, and at that moment its
// gradient is already the final one.
TEST(BackwardHooks, ReportEachParameterOnceItsGradientIsComplete) {
  Parameter w1("w1", {4, 4}), w2("w2", {4, 4}), w3("w3", {2});
  w1.value.copy_(filled({4, 4}, 0.3f, -0.05f));
  w2.value.copy_(filled({4, 4}, -0.2f, 0.07f));
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  const ag::Var x = tape.leaf(filled({3, 4}, 1.0f, -0.3f));
  const ag::Var p1 = tape.param(w1), p2 = tape.param(w2);
  tape.param(w3);
  const ag::Var h = ag::relu(ag::matmul(x, p1));
  const ag::Var y = ag::matmul(ag::matmul(h, p2), p1);
  const ag::Var loss = ag::sum(ag::mul(y, y));
  std::map<std::string, Tensor> at_report;
  int nodes = 0;
  ag::BackwardHooks hooks{[&](Parameter& p) {
                            EXPECT_FALSE(at_report.count(p.name)) << p.name << " reported twice";
                            at_report[p.name] = p.grad.clone(true);
                          },
                          [&] { ++nodes; }};
  tape.backward(loss, Tensor::full({1}, 1.0f).view(loss.value().shape()), hooks);
  EXPECT_EQ(nodes, int(tape.node_count()));
  ASSERT_EQ(at_report.size(), 3u);
  for (const Parameter* p : {&w1, &w2, &w3}) {
    const Tensor& seen = at_report.at(p->name);
    for (int64_t i = 0; i < p->grad.numel(); ++i) EXPECT_EQ(seen.f32()[i], p->grad.f32()[i]) << p->name;
  }
  EXPECT_NE(w1.grad.f32()[0], 0.0f);  // a real gradient
}

TEST(PairwiseSum, SplitsAtTheLargestPowerOfTwoBelowTheCount) {
  // 1e16 + 1 rounds back to 1e16: the order shows. Pairwise: (1e16 + 1) + (-1e16 + 1) = 0; left to
  // right it would be 1.
  const std::vector<double> v{1e16, 1, -1e16, 1};
  EXPECT_EQ(dist::pairwise_sum(v), 0.0);
  // Three values: (a + b) + c.
  const std::vector<double> three{1, 1e16, -1e16};
  EXPECT_EQ(dist::pairwise_sum(three), (1.0 + 1e16) + -1e16);
  EXPECT_EQ(dist::pairwise_sum(std::vector<double>{}), 0.0);
  const std::vector<int64_t> ten_by_three = dist::even_counts(10, 3), two_by_four = dist::even_counts(2, 4);
  ASSERT_EQ(ten_by_three.size(), 3u);
  EXPECT_EQ(ten_by_three[0], 4);
  EXPECT_EQ(ten_by_three[2], 3);
  ASSERT_EQ(two_by_four.size(), 4u);
  EXPECT_EQ(two_by_four[1], 1);
  EXPECT_EQ(two_by_four[2], 0);
  EXPECT_EQ(two_by_four[3], 0);
}

// A rank's shards are summed pairwise in shard order, as the communicator sums ranks.
TEST(GradientSync, SumsShardsPairwiseInShardOrder) {
  Parameter a("a", {5}), b("b", {2, 3});
  a.value.copy_(filled({5}, 1, 1));
  ParameterList params{&a, &b};
  dist::SingleProcess comm;
  train::GradientSync sync(params, comm, {});
  // One buffer, in the parameters' reverse order, each gradient 64-byte aligned and padded as every Tensor.
  EXPECT_EQ(sync.elements(), 32);
  EXPECT_EQ(b.grad.f32() + 16, a.grad.f32());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.grad.f32()) % 64, 0u);
  for (int shards : {1, 2, 3, 4, 5, 7}) {
    std::vector<std::vector<float>> g(static_cast<size_t>(shards));
    sync.begin_step(shards);
    for (int j = 0; j < shards; ++j) {
      if (j > 0) sync.next_shard();
      EXPECT_EQ(a.grad.f32()[0], 0.0f) << "each shard starts from zero";
      for (int64_t i = 0; i < 5; ++i)
        a.grad.f32()[i] = std::pow(10.0f, float(j % 4) * 2.5f) * float(i + j + 1) / 3;
      for (int64_t i = 0; i < 6; ++i) b.grad.f32()[i] = 1.0f / float(1 + i * j);
      g[size_t(j)].assign(a.grad.f32(), a.grad.f32() + 5);
    }
    sync.finish_backward();
    // The expected sum, by pairwise_sum's split, in float.
    std::function<float(int, int, int64_t)> pairwise = [&](int lo, int n, int64_t i) -> float {
      if (n == 1) return g[size_t(lo)][size_t(i)];
      const int half = int(std::bit_floor(unsigned(n - 1)));
      return pairwise(lo, half, i) + pairwise(lo + half, n - half, i);
    };
    for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(a.grad.f32()[i], pairwise(0, shards, i)) << shards << " shards";
  }
}

TEST(GradientSync, ClipsToTheGlobalNormAndSkipsFrozenParameters) {
  Parameter a("a", {3}), frozen("frozen", {2});
  frozen.trainable = false;
  ParameterList params{&a, &frozen};
  dist::SingleProcess comm;
  train::GradientSync sync(params, comm, {.zero = true});
  EXPECT_EQ(sync.owned(), ParameterList{&a});
  sync.begin_step(1);
  a.grad.f32()[0] = 6, a.grad.f32()[1] = 0, a.grad.f32()[2] = 8;  // norm 10, loss-scaled by 2: 5
  sync.finish_backward();
  EXPECT_NEAR(sync.clip(1.0f, 0.5f), 5.0, 1e-6);
  EXPECT_NEAR(a.grad.f32()[0], 0.6, 1e-6);
  EXPECT_NEAR(a.grad.f32()[2], 0.8, 1e-6);
}

}  // namespace
}  // namespace tfm
