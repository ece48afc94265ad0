// attention() with grouped-query heads, sliding window, query offset, ALiBi and a learned score bias,
// against a dense reference computed here and against finite differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "autograd/ops.h"
#include "gradient_check.h"

namespace tfm::ag {
namespace {

using test::check_gradients;
using test::random_tensor;

// Everything the reference needs to know; mirrors AttentionOptions.
struct Case {
  int64_t batch = 2, q_len = 5, k_len = 5, heads = 4, kv_heads = 4, head_dim = 3;
  float scale = 0.6f;
  bool causal = false;
  int64_t query_offset = 0, window = 0, global = 0;
  std::vector<uint8_t> key_valid;  // empty: all valid
  bool alibi = false;
  int bias_dims = 0;  // 0: none, 3: [heads, q, k], 4: [batch, heads, q, k]
};

AttentionOptions options_for(const Case& c, const Tensor& valid, const Tensor& positions) {
  AttentionOptions o;
  o.heads = int(c.heads);
  o.kv_heads = int(c.kv_heads);
  o.scale = c.scale;
  o.causal = c.causal;
  o.query_offset = c.query_offset;
  o.window = c.window;
  o.global_tokens = c.global;
  o.key_valid = valid;
  if (c.alibi) {
    o.alibi_slopes = alibi_slopes(int(c.heads));
    o.alibi_positions = positions;
  }
  return o;
}

Tensor valid_tensor(const Case& c) {
  if (c.key_valid.empty()) return Tensor();
  Tensor t = Tensor::empty_persistent({c.batch, c.k_len}, DType::U8);
  std::copy(c.key_valid.begin(), c.key_valid.end(), t.data<uint8_t>());
  return t;
}

// out[b, i, h*D + d] = sum_j softmax_j(scale q.k + bias) v, over the keys the rules leave visible,
// evaluated in double straight from the definitions (HF repeat_kv, sliding_window_overlay, ALiBi).
// (Left padding with causal masking leaves the padding queries no key: see below.)
std::vector<double> reference(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& bias, const Tensor& positions) {
  std::vector<double> out(size_t(c.batch * c.q_len * c.heads * c.head_dim), 0.0);
  Tensor slopes = alibi_slopes(int(c.heads));
  int64_t group = c.heads / c.kv_heads;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.q_len; ++i) {
        int64_t pos = i + c.query_offset, g = h / group;
        std::vector<double> w(size_t(c.k_len), 0.0);
        double mx = -1e300;
        std::vector<bool> seen(size_t(c.k_len), false);
        for (int64_t j = 0; j < c.k_len; ++j) {
          // Longformer's global tokens: a global key or a global query ignores the window.
          const bool global = j < c.global || pos < c.global;
          bool visible = (!c.causal || j <= pos) && (c.window == 0 || pos - j < c.window || global) &&
                         (c.key_valid.empty() || c.key_valid[size_t(b * c.k_len + j)]);
          if (!visible) continue;
          double s = 0;
          for (int64_t d = 0; d < c.head_dim; ++d)
            s += q.at({b, i, h * c.head_dim + d}) * k.at({b, j, g * c.head_dim + d});
          s *= c.scale;
          if (c.bias_dims == 3) s += bias.at({h, i, j});
          if (c.bias_dims == 4) s += bias.at({b, h, i, j});
          if (c.alibi) s += slopes.at({h}) * positions.at({b, j});
          w[size_t(j)] = s;
          seen[size_t(j)] = true;
          mx = std::max(mx, s);
        }
        // A query with no visible key: every score is the same -1e9 fill, so the softmax is uniform.
        if (std::find(seen.begin(), seen.end(), true) == seen.end()) {
          std::fill(seen.begin(), seen.end(), true);
          std::fill(w.begin(), w.end(), 0.0);
          mx = 0;
        }
        double z = 0;
        for (int64_t j = 0; j < c.k_len; ++j)
          if (seen[size_t(j)]) z += (w[size_t(j)] = std::exp(w[size_t(j)] - mx));
        for (int64_t j = 0; j < c.k_len; ++j) {
          if (!seen[size_t(j)]) continue;
          for (int64_t d = 0; d < c.head_dim; ++d)
            out[size_t(((b * c.q_len + i) * c.heads + h) * c.head_dim + d)] +=
                w[size_t(j)] / z * v.at({b, j, g * c.head_dim + d});
        }
      }
  return out;
}

struct Inputs {
  Tensor q, k, v, bias, positions;
};

Inputs make_inputs(const Case& c, std::mt19937& g) {
  Inputs in;
  in.q = random_tensor({c.batch, c.q_len, c.heads * c.head_dim}, g, -2, 2);
  in.k = random_tensor({c.batch, c.k_len, c.kv_heads * c.head_dim}, g, -2, 2);
  in.v = random_tensor({c.batch, c.k_len, c.kv_heads * c.head_dim}, g);
  if (c.bias_dims == 3) in.bias = random_tensor({c.heads, c.q_len, c.k_len}, g);
  if (c.bias_dims == 4) in.bias = random_tensor({c.batch, c.heads, c.q_len, c.k_len}, g);
  in.positions = random_tensor({c.batch, c.k_len}, g, 0, 8);
  return in;
}

void check_case(const std::string& name, const Case& c, uint32_t seed) {
  std::mt19937 g(seed);
  Inputs in = make_inputs(c, g);
  Tensor valid = valid_tensor(c);
  AttentionOptions o = options_for(c, valid, in.positions);
  {
    Tape tape;
    Tape::Scope scope(tape);
    Var bias = in.bias.defined() ? tape.leaf(in.bias) : Var();
    Var y = attention(tape.leaf(in.q), tape.leaf(in.k), tape.leaf(in.v), o, false, bias);
    std::vector<double> want = reference(c, in.q, in.k, in.v, in.bias, in.positions);
    Tensor want_t = Tensor::empty_persistent(y.shape());
    for (size_t i = 0; i < want.size(); ++i) want_t.f32()[i] = float(want[i]);
    EXPECT_TRUE(tfm::test::expect_close(name + " forward", y.value(), want_t, 1e-5));
  }
  std::vector<Tensor> inputs{in.q, in.k, in.v};
  if (in.bias.defined()) inputs.push_back(in.bias);
  check_gradients(
      name, inputs,
      [&](Tape&, const std::vector<Var>& v) {
        return attention(v[0], v[1], v[2], o, true, v.size() > 3 ? v[3] : Var());
      },
      1e-2, 1e-3f);
}

TEST(OpsAttention, GroupedQuery) {
  Case c;
  c.kv_heads = 2;  // query heads 0, 1 read K/V head 0; 2, 3 read head 1
  c.causal = true;
  check_case("gqa", c, 31);
  c.kv_heads = 1;  // multi-query
  c.causal = false;
  c.key_valid = {1, 1, 1, 0, 1, 0, 1, 1, 1, 1};
  check_case("mqa", c, 32);
}

TEST(OpsAttention, SlidingWindow) {
  Case c;
  c.q_len = c.k_len = 7;
  c.causal = true;
  c.window = 3;  // query i sees keys i-2, i-1, i
  c.kv_heads = 2;
  check_case("window", c, 33);
  c.window = 1;  // only itself
  check_case("window1", c, 34);
  // Cached decoding: 2 new queries at positions 5, 6 over 7 keys, left padding in row 1.
  c.q_len = 2;
  c.query_offset = 5;
  c.window = 3;
  c.key_valid = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
  check_case("window_offset", c, 35);
}

TEST(OpsAttention, BlockSparseLocalWindowPlusGlobalTokens) {
  Case c;
  c.q_len = c.k_len = 9;
  c.causal = true;
  c.window = 2;
  c.global = 2;  // query 6 sees keys 0, 1 (global), 5, 6 (window)
  c.kv_heads = 2;
  check_case("causal", c, 36);
  c.causal = false;  // global queries 0, 1 see all nine keys; the others their window back and the rest ahead
  c.key_valid = std::vector<uint8_t>(18, 1);
  c.key_valid[16] = c.key_valid[17] = 0;
  check_case("bidirectional, padding", c, 37);
  c.q_len = 3;  // cached decoding: queries at positions 6, 7, 8
  c.query_offset = 6;
  c.causal = true;
  check_case("cached", c, 38);
}

TEST(OpsAttention, WindowMatchesHuggingFaceInequality) {
  // HF keeps kv_idx > q_idx - window: with window 6 the query at position 9 sees keys 4..9, not 3.
  Case c;
  c.batch = 1;
  c.heads = c.kv_heads = 1;
  c.q_len = c.k_len = 10;
  c.causal = true;
  c.window = 6;
  std::mt19937 g(36);
  Inputs in = make_inputs(c, g);
  Tensor probs;
  AttentionOptions o = options_for(c, Tensor(), in.positions);
  o.keep_probs = &probs;
  Tape tape;
  Tape::Scope scope(tape);
  attention(tape.leaf(in.q), tape.leaf(in.k), tape.leaf(in.v), o, false);
  EXPECT_EQ(probs.at({0, 0, 9, 3}), 0.0);
  EXPECT_GT(probs.at({0, 0, 9, 4}), 0.0);
  EXPECT_GT(probs.at({0, 0, 9, 9}), 0.0);
}

TEST(OpsAttention, AlibiAndLearnedBias) {
  Case c;
  c.alibi = true;
  c.causal = true;
  c.key_valid = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  check_case("alibi", c, 37);
  Case t5;  // T5: no score scaling, a learned bias shared by the batch
  t5.scale = 1.0f;
  t5.bias_dims = 3;
  t5.q_len = 3;
  t5.key_valid = {1, 1, 1, 1, 0, 1, 1, 1, 1, 1};
  check_case("shared_bias", t5, 38);
  t5.bias_dims = 4;
  t5.causal = true;
  t5.query_offset = 2;
  check_case("per_batch_bias", t5, 39);
}

TEST(OpsAttention, BiasGradientFlowsIntoRelativePositionTable) {
  // T5's pattern: one bias from the table, reused by two attention layers.
  std::mt19937 g(40);
  check_gradients(
      "t5_bias_table",
      {random_tensor({8, 2}, g), random_tensor({1, 4, 6}, g), random_tensor({1, 4, 6}, g),
       random_tensor({1, 4, 6}, g)},
      [](Tape&, const std::vector<Var>& v) {
        Var bias = relative_position_bias(v[0], 4, 4, true, 16);
        AttentionOptions o;
        o.heads = 2;
        Var first = attention(v[1], v[2], v[3], o, true, bias);
        return attention(first, v[2], v[3], o, true, bias);
      },
      1e-2, 1e-3f);
}

// Hugging Face's eager attention adds finfo.min to masked scores instead of masked_fill. A padding query
// under left padding and a causal mask sees no key: every score is absorbed into the same huge constant,
// P is uniform over all keys, and autograd differentiates softmax at that P, so the raw scores of that
// row (and through them q and k) get dS = P (dP - sum(P dP)). GPT-2's loss reads such a row: the last
// padding position predicts the first real token. Reference: that rule in double, one head.
TEST(OpsAttention, AdditiveMaskDifferentiatesRowsWithNoVisibleKey) {
  const int64_t len = 4, dim = 3;
  const float scale = 0.5f;
  const std::vector<uint8_t> valid_keys{0, 0, 1, 1};  // left padding: queries 0 and 1 see no key
  std::mt19937 g(42);
  Tensor q = random_tensor({1, len, dim}, g, -2, 2), k = random_tensor({1, len, dim}, g, -2, 2);
  Tensor v = random_tensor({1, len, dim}, g), upstream = random_tensor({1, len, dim}, g);
  Tensor valid = Tensor::empty_persistent({1, len}, DType::U8);
  std::copy(valid_keys.begin(), valid_keys.end(), valid.data<uint8_t>());

  std::vector<double> dq(size_t(len * dim), 0.0), dk(dq), dv(dq);
  for (int64_t i = 0; i < len; ++i) {
    std::vector<bool> visible(static_cast<size_t>(len));
    bool any = false;
    for (int64_t j = 0; j < len; ++j) any |= (visible[size_t(j)] = j <= i && valid_keys[size_t(j)]);
    if (!any) visible.assign(size_t(len), true);  // uniform over every key
    std::vector<double> p(size_t(len), 0.0), dp(size_t(len), 0.0);
    double z = 0, mx = -1e300;
    for (int64_t j = 0; j < len; ++j) {
      if (!visible[size_t(j)]) continue;
      double s = 0;
      for (int64_t d = 0; d < dim; ++d) s += q.at({0, i, d}) * k.at({0, j, d});
      p[size_t(j)] = any ? scale * s : 0.0;
      mx = std::max(mx, p[size_t(j)]);
    }
    for (int64_t j = 0; j < len; ++j)
      if (visible[size_t(j)]) z += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
    double dot = 0;
    for (int64_t j = 0; j < len; ++j) {
      if (!visible[size_t(j)]) continue;
      p[size_t(j)] /= z;
      for (int64_t d = 0; d < dim; ++d) {
        dp[size_t(j)] += upstream.at({0, i, d}) * v.at({0, j, d});
        dv[size_t(j * dim + d)] += p[size_t(j)] * upstream.at({0, i, d});
      }
      dot += p[size_t(j)] * dp[size_t(j)];
    }
    for (int64_t j = 0; j < len; ++j) {
      double ds = p[size_t(j)] * (dp[size_t(j)] - dot);
      for (int64_t d = 0; d < dim; ++d) {
        dq[size_t(i * dim + d)] += scale * ds * k.at({0, j, d});
        dk[size_t(j * dim + d)] += scale * ds * q.at({0, i, d});
      }
    }
  }

  Tape tape;
  Tape::Scope scope(tape);
  Var vq = tape.leaf(q, true), vk = tape.leaf(k, true), vv = tape.leaf(v, true);
  AttentionOptions o;
  o.scale = scale;
  o.causal = true;
  o.key_valid = valid;
  o.additive_mask = true;
  tape.backward(attention(vq, vk, vv, o, true), upstream);
  auto as_tensor = [&](const std::vector<double>& x) {
    Tensor t = Tensor::empty_persistent({1, len, dim});
    for (size_t i = 0; i < x.size(); ++i) t.f32()[i] = float(x[i]);
    return t;
  };
  EXPECT_TRUE(tfm::test::expect_close("dq", vq.grad(), as_tensor(dq), 1e-5));
  EXPECT_TRUE(tfm::test::expect_close("dk", vk.grad(), as_tensor(dk), 1e-5));
  EXPECT_TRUE(tfm::test::expect_close("dv", vv.grad(), as_tensor(dv), 1e-5));
  EXPECT_NE(vq.grad().at({0, 0, 0}), 0.0);  // the padding query's row does pass a gradient
}

TEST(OpsAttention, RejectsBadShapes) {
  std::mt19937 g(41);
  Tape tape;
  Tape::Scope scope(tape);
  Var q = tape.leaf(random_tensor({1, 2, 8}, g)), k3 = tape.leaf(random_tensor({1, 2, 6}, g));
  AttentionOptions o;
  o.heads = 4;
  o.kv_heads = 3;  // 4 heads do not split into 3 groups
  EXPECT_THROW(attention(q, k3, k3, o, false), Error);
  o.kv_heads = 2;
  Var k = tape.leaf(random_tensor({1, 2, 4}, g));
  EXPECT_NO_THROW(attention(q, k, k, o, false));
  EXPECT_THROW(attention(q, k, k, o, false, tape.leaf(random_tensor({4, 2, 3}, g))), Error);
  o.alibi_slopes = alibi_slopes(4);  // without positions
  EXPECT_THROW(attention(q, k, k, o, false), Error);
}

}  // namespace
}  // namespace tfm::ag
