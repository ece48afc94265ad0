// Every op's backward against central finite differences of its forward.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "autograd/ops.h"
#include "gradient_check.h"

namespace tfm::ag {
namespace {

using test::check_gradients;
using test::random_tensor;

TEST(Autograd, Linear) {
  std::mt19937 g(1);
  check_gradients("linear", {random_tensor({2, 3, 5}, g), random_tensor({4, 5}, g), random_tensor({4}, g)},
                  [](Tape&, const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); });
  check_gradients("linear_nobias", {random_tensor({3, 5}, g), random_tensor({4, 5}, g)},
                  [](Tape&, const std::vector<Var>& v) { return linear(v[0], v[1]); });
}

TEST(Autograd, MatmulAddScaleSum) {
  std::mt19937 g(2);
  check_gradients("matmul", {random_tensor({3, 4}, g), random_tensor({4, 5}, g)},
                  [](Tape&, const std::vector<Var>& v) { return matmul(v[0], v[1]); });
  check_gradients("add", {random_tensor({3, 4}, g), random_tensor({3, 4}, g)},
                  [](Tape&, const std::vector<Var>& v) { return add(v[0], v[1]); });
  check_gradients("scale", {random_tensor({3, 4}, g)},
                  [](Tape&, const std::vector<Var>& v) { return scale(v[0], -2.5f); });
  check_gradients("sum", {random_tensor({3, 4}, g)},
                  [](Tape&, const std::vector<Var>& v) { return sum(v[0]); });
  // A value used twice accumulates both gradients.
  check_gradients("reuse", {random_tensor({3, 4}, g)},
                  [](Tape&, const std::vector<Var>& v) { return add(v[0], scale(v[0], 3.0f)); });
}

TEST(Autograd, PositionsReluDropout) {
  std::mt19937 g(3);
  Tensor table = random_tensor({6, 4}, g);
  check_gradients("add_positions", {random_tensor({2, 5, 4}, g)},
                  [&](Tape&, const std::vector<Var>& v) { return add_positions(v[0], table); });
  // Keep inputs away from relu's kink so the finite difference is well defined.
  Tensor x = random_tensor({4, 6}, g, 0.1f, 1.0f);
  for (int64_t i = 0; i < x.numel(); i += 2) x.f32()[i] = -x.f32()[i];
  check_gradients("relu", {x}, [](Tape&, const std::vector<Var>& v) { return relu(v[0]); });
  check_gradients("dropout", {random_tensor({4, 50}, g)}, [](Tape&, const std::vector<Var>& v) {
    Rng rng(42);  // same mask in every evaluation
    return dropout(v[0], 0.3f, &rng, true);
  });
}

TEST(Autograd, DropoutKeepsExpectation) {
  Tape tape;
  Tape::Scope scope(tape);
  Rng rng(5);
  Tensor ones = Tensor::full({100000}, 1.0f);
  Var y = dropout(tape.leaf(ones), 0.25f, &rng, true);
  double mean = 0;
  int64_t zeros = 0;
  for (int64_t i = 0; i < ones.numel(); ++i) {
    mean += y.value().f32()[i];
    zeros += y.value().f32()[i] == 0.0f;
  }
  EXPECT_NEAR(mean / ones.numel(), 1.0, 0.01);
  EXPECT_NEAR(double(zeros) / ones.numel(), 0.25, 0.01);
}

TEST(Autograd, LayerNormBothKinds) {
  std::mt19937 g(4);
  for (auto kind : {kernels::NormKind::LayerNorm, kernels::NormKind::SeedLayerNorm}) {
    check_gradients(
        "layer_norm", {random_tensor({3, 2, 8}, g), random_tensor({8}, g), random_tensor({8}, g)},
        [kind](Tape&, const std::vector<Var>& v) { return layer_norm(v[0], v[1], v[2], 1e-6f, kind); }, 1e-2,
        1e-3f);
  }
}

TEST(Autograd, LayerNormKnownAnswer) {
  // x = [1, 2, 3, 4]: mean 2.5, biased var 1.25, unbiased std sqrt(5/3).
  Tape tape;
  Tape::Scope scope(tape);
  Tensor x = Tensor::empty({1, 4});
  for (int i = 0; i < 4; ++i) x.f32()[i] = float(i + 1);
  Var one = tape.leaf(Tensor::full({4}, 1.0f)), zero = tape.leaf(Tensor::zeros({4}));
  Var seed = layer_norm(tape.leaf(x), one, zero, 1e-6f, kernels::NormKind::SeedLayerNorm);
  Var std_ln = layer_norm(tape.leaf(x), one, zero, 1e-5f, kernels::NormKind::LayerNorm);
  EXPECT_NEAR(seed.value().f32()[0], -1.5 / (std::sqrt(5.0 / 3) + 1e-6), 1e-6);
  EXPECT_NEAR(std_ln.value().f32()[3], 1.5 / std::sqrt(1.25 + 1e-5), 1e-6);
}

TEST(Autograd, Embedding) {
  std::mt19937 g(5);
  Tensor ids = Tensor::empty_persistent({2, 3}, DType::I64);
  int64_t vals[] = {0, 3, 3, 1, 0, 4};  // repeated ids accumulate
  for (int i = 0; i < 6; ++i) ids.data<int64_t>()[i] = vals[i];
  check_gradients("embedding", {random_tensor({5, 4}, g)},
                  [&](Tape&, const std::vector<Var>& v) { return embedding(v[0], ids, 2.0f); });
  Tape tape;
  Tape::Scope scope(tape);
  ids.data<int64_t>()[2] = 5;
  EXPECT_THROW(embedding(tape.leaf(random_tensor({5, 4}, g)), ids, 1.0f), Error);
}

Tensor key_mask(std::initializer_list<uint8_t> v, const Shape& s) {
  Tensor m = Tensor::empty_persistent(s, DType::U8);
  int i = 0;
  for (uint8_t x : v) m.data<uint8_t>()[i++] = x;
  return m;
}

TEST(Autograd, AttentionMasksAndDropout) {
  std::mt19937 g(6);
  Tensor valid = key_mask({1, 1, 1, 0, 1, 1, 0, 0}, {2, 4});
  for (bool causal : {false, true}) {
    for (float p : {0.0f, 0.2f}) {
      AttentionOptions o;
      o.heads = 2;
      o.scale = 0.5f;
      o.causal = causal;
      o.key_valid = valid;
      o.dropout = p;
      check_gradients(
          "attention",
          {random_tensor({2, 4, 6}, g), random_tensor({2, 4, 6}, g), random_tensor({2, 4, 6}, g)},
          [&](Tape&, const std::vector<Var>& v) {
            Rng rng(9);
            AttentionOptions oo = o;
            oo.rng = &rng;
            return attention(v[0], v[1], v[2], oo, true);
          },
          1e-2, 1e-3f);
    }
  }
  // Cross-attention shape: 3 queries over 4 keys.
  AttentionOptions o;
  o.heads = 3;
  o.scale = 0.7f;
  o.key_valid = valid;
  check_gradients(
      "cross_attention",
      {random_tensor({2, 3, 6}, g), random_tensor({2, 4, 6}, g), random_tensor({2, 4, 6}, g)},
      [&](Tape&, const std::vector<Var>& v) { return attention(v[0], v[1], v[2], o, true); }, 1e-2, 1e-3f);
}

TEST(Autograd, AttentionMatchesNaiveSoftmax) {
  // One head, causal: out_i = sum_{j<=i} softmax(q_i . k_j * s) v_j, computed here directly.
  std::mt19937 g(8);
  Tensor q = random_tensor({1, 3, 2}, g), kk = random_tensor({1, 3, 2}, g), v = random_tensor({1, 3, 2}, g);
  Tape tape;
  Tape::Scope scope(tape);
  AttentionOptions o;
  o.scale = 0.8f;
  o.causal = true;
  Var y = attention(tape.leaf(q), tape.leaf(kk), tape.leaf(v), o, false);
  for (int i = 0; i < 3; ++i) {
    double w[3], z = 0;
    for (int j = 0; j <= i; ++j) {
      w[j] = std::exp(0.8 * (q.at({0, i, 0}) * kk.at({0, j, 0}) + q.at({0, i, 1}) * kk.at({0, j, 1})));
      z += w[j];
    }
    for (int c = 0; c < 2; ++c) {
      double want = 0;
      for (int j = 0; j <= i; ++j) want += w[j] / z * v.at({0, j, c});
      EXPECT_NEAR(y.value().at({0, i, c}), want, 1e-5);
    }
  }
}

TEST(Autograd, CrossEntropy) {
  std::mt19937 g(10);
  Tensor labels = Tensor::empty_persistent({2, 3}, DType::I64);
  int64_t vals[] = {1, 4, -100, 0, 2, 2};
  for (int i = 0; i < 6; ++i) labels.data<int64_t>()[i] = vals[i];
  for (float eps : {0.0f, 0.1f}) {
    check_gradients(
        "cross_entropy", {random_tensor({2, 3, 5}, g, -2, 2)},
        [&](Tape&, const std::vector<Var>& v) { return cross_entropy(v[0], labels, -100, eps); }, 1e-2,
        1e-3f);
  }
}

TEST(Autograd, CrossEntropyKnownAnswer) {
  // Uniform logits over C classes: nll = log C whatever the smoothing.
  Tape tape;
  Tape::Scope scope(tape);
  Tensor labels = Tensor::empty({2}, DType::I64);
  labels.data<int64_t>()[0] = 3;
  labels.data<int64_t>()[1] = 0;
  Var l = cross_entropy(tape.leaf(Tensor::zeros({2, 7})), labels, -100, 0.1f);
  EXPECT_NEAR(l.value().item(), std::log(7.0), 1e-6);
  labels.data<int64_t>()[1] = 7;
  EXPECT_THROW(cross_entropy(tape.leaf(Tensor::zeros({2, 7})), labels, -100, 0.1f), Error);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tape tape;
  Tape::Scope scope(tape);
  NoGrad off(tape);
  Var x = tape.leaf(Tensor::full({2, 2}, 1.0f), true);
  Var y = relu(add(x, x));
  EXPECT_EQ(tape.node_count(), 0u);
  EXPECT_FALSE(y.requires_grad());
}

}  // namespace
}  // namespace tfm::ag
