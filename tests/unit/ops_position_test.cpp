// rope, T5 relative position buckets and bias, ALiBi slopes and positions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "autograd/ops.h"
#include "gradient_check.h"
#include "kernels/cpu/position_bias.h"

namespace tfm::ag {
namespace {

using test::check_gradients;
using test::int_tensor;
using test::random_tensor;

TEST(OpsRope, KnownRotation) {
  // head_dim 4, theta 10000: inv_freq = [1, 10000^-0.5 = 0.01]. Pairs are (x0, x2) and (x1, x3).
  Tape tape;
  Tape::Scope scope(tape);
  Tensor x = Tensor::zeros({1, 2, 4});
  x.f32()[0] = 1.0f;  // position 0: unchanged
  x.f32()[4] = 1.0f;  // position 1, x0 = 1: (cos 1, 0, sin 1, 0)
  x.f32()[7] = 1.0f;  // position 1, x3 = 1: pair (x1, x3) = (0, 1) rotated by 0.01 -> (-sin .01, cos .01)
  Var y = rope(tape.leaf(x), int_tensor({0, 1}, {2}), 1, 10000.0f);
  const float* o = y.value().f32();
  EXPECT_FLOAT_EQ(o[0], 1.0f);
  EXPECT_EQ(o[1], 0.0f);
  EXPECT_EQ(o[2], 0.0f);
  EXPECT_NEAR(o[4], std::cos(1.0), 1e-7);
  EXPECT_NEAR(o[6], std::sin(1.0), 1e-7);
  EXPECT_NEAR(o[5], -std::sin(0.01), 1e-7);
  EXPECT_NEAR(o[7], std::cos(0.01), 1e-7);
}

TEST(OpsRope, ScoresDependOnRelativePositionOnly) {
  // <rope(q, m), rope(k, n)> is a function of m - n: the property RoPE is built for.
  std::mt19937 g(21);
  Tensor q = random_tensor({1, 1, 16}, g), kk = random_tensor({1, 1, 16}, g);
  auto score = [&](int64_t m, int64_t n) {
    Tape tape;
    Tape::Scope scope(tape);
    const float* a = rope(tape.leaf(q), m, 2, 10000.0f).value().f32();
    const float* b = rope(tape.leaf(kk), n, 2, 10000.0f).value().f32();
    double s = 0;
    for (int i = 0; i < 16; ++i) s += double(a[i]) * b[i];
    return s;
  };
  EXPECT_NEAR(score(3, 1), score(12, 10), 1e-5);
  EXPECT_NEAR(score(0, 5), score(20, 25), 1e-5);
}

TEST(OpsRope, OffsetAndSharedPositionsMatchPerRowPositions) {
  std::mt19937 g(22);
  Tensor x = random_tensor({2, 3, 8}, g);
  Tape tape;
  Tape::Scope scope(tape);
  Var a = rope(tape.leaf(x), int64_t(5), 2, 500.0f);
  Var b = rope(tape.leaf(x), int_tensor({5, 6, 7}, {3}), 2, 500.0f);
  Var c = rope(tape.leaf(x), int_tensor({5, 6, 7, 5, 6, 7}, {2, 3}), 2, 500.0f);
  EXPECT_TRUE(tfm::test::expect_close("offset vs shared", a.value(), b.value(), 0));
  EXPECT_TRUE(tfm::test::expect_close("offset vs per row", a.value(), c.value(), 0));
  EXPECT_THROW(rope(tape.leaf(x), int_tensor({1, 2}, {2}), 2, 500.0f), Error);
  EXPECT_THROW(rope(tape.leaf(random_tensor({1, 2, 6}, g)), int64_t(0), 2, 500.0f), Error);  // odd head_dim
}

TEST(OpsRope, Gradient) {
  std::mt19937 g(23);
  Tensor pos = int_tensor({0, 3, 9, 2, 1, 40}, {2, 3});  // per-row positions (left padding style)
  check_gradients("rope", {random_tensor({2, 3, 12}, g)},
                  [&](Tape&, const std::vector<Var>& v) { return rope(v[0], pos, 3, 10000.0f); });
}

TEST(RelativePositionBucket, KnownAnswers) {
  // Hand-computed from HF T5's _relative_position_bucket, 32 buckets, max_distance 128.
  using kernels::relative_position_bucket;
  // Bidirectional: 16 buckets a side, exact below 8, then 8 + int(log(n / 8) / log(16) * 8), capped at 15.
  EXPECT_EQ(relative_position_bucket(0, true, 32, 128), 0);
  EXPECT_EQ(relative_position_bucket(-1, true, 32, 128), 1);
  EXPECT_EQ(relative_position_bucket(1, true, 32, 128), 17);
  EXPECT_EQ(relative_position_bucket(-7, true, 32, 128), 7);
  EXPECT_EQ(relative_position_bucket(8, true, 32, 128), 24);     // 16 + 8 + int(0)
  EXPECT_EQ(relative_position_bucket(-12, true, 32, 128), 9);    // 8 + int(1.1699)
  EXPECT_EQ(relative_position_bucket(-16, true, 32, 128), 10);   // 8 + int(2.0): exactly on a boundary
  EXPECT_EQ(relative_position_bucket(-127, true, 32, 128), 15);  // 8 + int(7.97)
  EXPECT_EQ(relative_position_bucket(200, true, 32, 128), 31);   // capped
  // Unidirectional: keys after the query -> 0; exact below 16, then 16 + int(log(n / 16) / log(8) * 16).
  EXPECT_EQ(relative_position_bucket(5, false, 32, 128), 0);
  EXPECT_EQ(relative_position_bucket(-3, false, 32, 128), 3);
  EXPECT_EQ(relative_position_bucket(-15, false, 32, 128), 15);
  EXPECT_EQ(relative_position_bucket(-20, false, 32, 128), 17);  // 16 + int(1.717)
  EXPECT_EQ(relative_position_bucket(-32, false, 32, 128), 21);  // 16 + int(5.333)
  EXPECT_EQ(relative_position_bucket(-1000, false, 32, 128), 31);
}

TEST(RelativePositionBias, LooksUpTheTableAndSumsGradients) {
  std::mt19937 g(24);
  Tensor table = random_tensor({32, 3}, g);
  Tape tape;
  Tape::Scope scope(tape);
  Var bias = relative_position_bias(tape.leaf(table), 4, 6, true, 128, 0);
  ASSERT_EQ(bias.shape(), (Shape{3, 4, 6}));
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 6; ++j)
        EXPECT_EQ(bias.value().at({h, i, j}),
                  table.at({kernels::relative_position_bucket(j - i, true, 32, 128), h}));
  // Decoding: query offset 5 over 6 keys equals the last row of the full 6 x 6 bias.
  Var step = relative_position_bias(tape.leaf(table), 1, 6, false, 128, 5);
  Var full = relative_position_bias(tape.leaf(table), 6, 6, false, 128, 0);
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(step.value().at({h, 0, j}), full.value().at({h, 5, j}));
  for (bool bidirectional : {true, false})
    check_gradients("relative_position_bias", {random_tensor({8, 2}, g)},
                    [&](Tape&, const std::vector<Var>& v) {
                      return relative_position_bias(v[0], 5, 7, bidirectional, 16, 1);
                    });
}

TEST(Alibi, SlopesFollowBloom) {
  auto slopes = [](int heads) {
    Tensor t = alibi_slopes(heads);
    return std::vector<float>(t.f32(), t.f32() + heads);
  };
  // Powers of two: 2^(-8 h / n) for h = 1..n.
  EXPECT_EQ(slopes(4), (std::vector<float>{0.25f, 0.0625f, 0.015625f, 0.00390625f}));
  EXPECT_EQ(slopes(8)[0], 0.5f);
  EXPECT_EQ(slopes(8)[7], 1.0f / 256);
  // 6 heads: the 4-head slopes, then 2^(-4/4 * (1, 3)) = 0.5, 0.125 (every other slope of 8 heads).
  EXPECT_EQ(slopes(6), (std::vector<float>{0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f}));
  EXPECT_NEAR(slopes(12)[8], std::pow(2.0, -0.5), 1e-7);  // 8 + 4: extra base 2^(-8/16)
}

TEST(Alibi, KeyPositionsSkipPadding) {
  // (cumsum(mask) - 1) * mask.
  Tensor mask = int_tensor({0, 0, 1, 1, 1, 1, 1, 0, 1, 1}, {2, 5});
  Tensor pos = alibi_key_positions(mask);
  std::vector<float> got(pos.f32(), pos.f32() + 10);
  EXPECT_EQ(got, (std::vector<float>{0, 0, 0, 1, 2, 0, 1, 0, 2, 3}));
}

}  // namespace
}  // namespace tfm::ag
