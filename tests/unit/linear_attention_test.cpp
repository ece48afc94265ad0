// Linear attention (kernels/cpu/linear_attention.h) against its definition evaluated in double over every
// (query, key) pair, O(n^2) as a dense masked reference would (causal, padding, grouped-query heads,
// queries after cached keys), and its gradients against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "autograd/ops.h"
#include "gradient_check.h"

namespace tfm::ag {
namespace {

using test::check_gradients;
using test::random_tensor;

struct Case {
  int64_t batch = 2, q_len = 7, k_len = 7, heads = 4, kv_heads = 2, head_dim = 3;
  bool causal = true;
  int64_t query_offset = 0;
  std::vector<uint8_t> key_valid;  // empty: all valid
};

double phi(double x) { return x > 0 ? x + 1 : std::exp(x); }

// out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j) over the visible keys j (0 if none).
Tensor reference(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v) {
  Tensor out = Tensor::zeros_persistent({c.batch, c.q_len, c.heads * c.head_dim});
  const int64_t group = c.heads / c.kv_heads;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.q_len; ++i) {
        const int64_t g = h / group;
        std::vector<double> num(size_t(c.head_dim), 0.0);
        double den = 0;
        for (int64_t j = 0; j < c.k_len; ++j) {
          if (c.causal && j > i + c.query_offset) continue;
          if (!c.key_valid.empty() && !c.key_valid[size_t(b * c.k_len + j)]) continue;
          double w = 0;
          for (int64_t e = 0; e < c.head_dim; ++e)
            w += phi(q.at({b, i, h * c.head_dim + e})) * phi(k.at({b, j, g * c.head_dim + e}));
          den += w;
          for (int64_t e = 0; e < c.head_dim; ++e) num[size_t(e)] += w * v.at({b, j, g * c.head_dim + e});
        }
        for (int64_t e = 0; e < c.head_dim; ++e)
          out.f32()[(b * c.q_len + i) * c.heads * c.head_dim + h * c.head_dim + e] =
              den > 0 ? float(num[size_t(e)] / den) : 0.0f;
      }
  return out;
}

void check_case(const std::string& name, const Case& c, uint32_t seed) {
  std::mt19937 g(seed);
  Tensor q = random_tensor({c.batch, c.q_len, c.heads * c.head_dim}, g, -2, 2);
  Tensor k = random_tensor({c.batch, c.k_len, c.kv_heads * c.head_dim}, g, -2, 2);
  Tensor v = random_tensor({c.batch, c.k_len, c.kv_heads * c.head_dim}, g);
  Tensor valid;
  if (!c.key_valid.empty()) {
    valid = Tensor::empty_persistent({c.batch, c.k_len}, DType::U8);
    std::copy(c.key_valid.begin(), c.key_valid.end(), valid.data<uint8_t>());
  }
  AttentionOptions o;
  o.heads = int(c.heads);
  o.kv_heads = int(c.kv_heads);
  o.causal = c.causal;
  o.query_offset = c.query_offset;
  o.key_valid = valid;
  {
    Tape tape;
    Tape::Scope scope(tape);
    Var y = linear_attention(tape.leaf(q), tape.leaf(k), tape.leaf(v), o);
    EXPECT_TRUE(tfm::test::expect_close(name + " forward", y.value(), reference(c, q, k, v), 1e-5));
  }
  check_gradients(
      name, {q, k, v},
      [&](Tape&, const std::vector<Var>& x) { return linear_attention(x[0], x[1], x[2], o); }, 1e-2, 1e-3f);
}

TEST(LinearAttention, CausalMatchesDefinitionAndFiniteDifferences) {
  Case c;
  check_case("causal, grouped-query", c, 41);
  c.kv_heads = 4;
  c.key_valid = {1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1};  // padding mid-row 0; row 1 starts padded
  check_case("causal, padding", c, 42);
}

TEST(LinearAttention, BidirectionalMatchesDefinitionAndFiniteDifferences) {
  Case c;
  c.causal = false;
  c.k_len = 5;
  c.key_valid = {1, 1, 1, 1, 0, 1, 0, 1, 1, 1};
  check_case("bidirectional", c, 43);
}

TEST(LinearAttention, QueriesAfterCachedKeys) {
  Case c;  // decoding: 2 queries at positions 5, 6 over 7 keys; a row whose keys are all padding gets 0
  c.q_len = 2;
  c.query_offset = 5;
  c.key_valid = {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
  check_case("cached", c, 44);
}

TEST(LinearAttention, LongSequenceAgreesWithDefinition) {
  Case c;  // running sums over a few hundred steps stay within float tolerance of the pairwise sums
  c.batch = 1;
  c.q_len = c.k_len = 300;
  c.head_dim = 8;
  std::mt19937 g(45);
  Tensor q = random_tensor({1, c.q_len, c.heads * c.head_dim}, g, -2, 2);
  Tensor k = random_tensor({1, c.k_len, c.kv_heads * c.head_dim}, g, -2, 2);
  Tensor v = random_tensor({1, c.k_len, c.kv_heads * c.head_dim}, g);
  AttentionOptions o;
  o.heads = int(c.heads);
  o.kv_heads = int(c.kv_heads);
  o.causal = true;
  Tape tape;
  Tape::Scope scope(tape);
  Var y = linear_attention(tape.leaf(q), tape.leaf(k), tape.leaf(v), o);
  EXPECT_TRUE(tfm::test::expect_close("300 tokens", y.value(), reference(c, q, k, v), 1e-4));
}

TEST(LinearAttention, RejectsWhatItCannotCompute) {
  Tape tape;
  Tape::Scope scope(tape);
  std::mt19937 g(46);
  Var x = tape.leaf(random_tensor({1, 4, 8}, g));
  AttentionOptions o;
  o.heads = 2;
  o.window = 2;
  EXPECT_THROW(linear_attention(x, x, x, o), Error);
  o.window = 0;
  o.global_tokens = 1;
  EXPECT_THROW(linear_attention(x, x, x, o), Error);
}

}  // namespace
}  // namespace tfm::ag
