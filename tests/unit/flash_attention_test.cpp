// The flash kernel against the dense one (itself checked against a float64 reference and finite
// differences in ops_attention_test.cpp), on shapes that span several query and key tiles with partial
// tiles at the ends: outputs, dQ, dK, dV and the score gradient, under every mask, bias and dropout
// combination the dense kernel supports.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/flash_attention.h"

namespace tfm::kernels {
namespace {

struct Case {
  const char* name;
  int64_t batch = 2, q_len = 150, k_len = 300, heads = 4, kv_heads = 2, head_dim = 16;
  bool causal = false, additive = false, left_padding = false, right_padding = false, alibi = false;
  int64_t query_offset = 0, window = 0, global = 0;
  int bias_dims = 0;  // 0, 3 or 4
  float dropout = 0.0f;
};

std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

float max_abs(const std::vector<float>& a) {
  float m = 0;
  for (float x : a) m = std::max(m, std::abs(x));
  return m;
}

void run_case(const Case& c) {
  SCOPED_TRACE(c.name);
  std::mt19937 rng(7);
  AttentionDims d;
  d.batch = c.batch, d.q_len = c.q_len, d.k_len = c.k_len, d.heads = c.heads, d.kv_heads = c.kv_heads;
  d.head_dim = c.head_dim;
  d.q_stride = c.heads * c.head_dim;
  d.k_stride = d.v_stride = c.kv_heads * c.head_dim;
  const size_t nq = size_t(c.batch * c.q_len * d.q_stride), nk = size_t(c.batch * c.k_len * d.k_stride);
  const size_t scores = size_t(c.batch * c.heads * c.q_len * c.k_len);
  std::vector<float> q = random_vector(nq, rng), k = random_vector(nk, rng), v = random_vector(nk, rng);
  std::vector<float> dout = random_vector(nq, rng);

  std::vector<uint8_t> valid;
  AttentionMask mask;
  if (c.left_padding || c.right_padding) {
    valid.assign(size_t(c.batch * c.k_len), 1);
    // Row 1 loses 70 keys (more than a key tile with the left padding, so whole tiles are skipped).
    for (int64_t j = 0; j < 70; ++j) valid[size_t(c.k_len + (c.left_padding ? j : c.k_len - 1 - j))] = 0;
    mask.key_valid = valid.data();
  }
  mask.causal = c.causal;
  mask.additive = c.additive;
  mask.query_offset = c.query_offset;
  mask.window = c.window;
  mask.global = c.global;

  AttentionBias bias;
  std::vector<float> score_bias, slopes, positions;
  if (c.bias_dims) {
    score_bias = random_vector(size_t((c.bias_dims == 4 ? c.batch : 1) * c.heads * c.q_len * c.k_len), rng);
    bias.scores = score_bias.data();
    bias.per_batch = c.bias_dims == 4;
  }
  if (c.alibi) {
    for (int64_t h = 0; h < c.heads; ++h) slopes.push_back(std::pow(2.0f, -float(h + 1)));
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t j = 0; j < c.k_len; ++j) positions.push_back(float(j - 3 * b));
    bias.alibi_slopes = slopes.data();
    bias.key_positions = positions.data();
  }
  DropoutSpec drop{c.dropout, 99, 12345};
  const float scale = 1.0f / std::sqrt(float(c.head_dim));

  std::vector<float> out_dense(nq), probs(scores), out_flash(nq, NAN),
      lse(size_t(c.batch * c.heads * c.q_len));
  attention_forward(d, mask, bias, scale, drop, q.data(), k.data(), v.data(), out_dense.data(), probs.data());
  flash_attention_forward(d, mask, bias, scale, drop, q.data(), k.data(), v.data(), out_flash.data(),
                          lse.data());
  EXPECT_LT(max_abs_diff(out_dense, out_flash), 2e-5f * std::max(1.0f, max_abs(out_dense)));

  std::vector<float> dq_d(nq, 0.5f), dk_d(nk, -0.25f), dv_d(nk, 0.125f), ds_d(scores);
  std::vector<float> dq_f = dq_d, dk_f = dk_d, dv_f = dv_d, ds_f(scores, NAN);
  attention_backward(d, mask, scale, drop, q.data(), k.data(), v.data(), probs.data(), dout.data(),
                     dq_d.data(), dk_d.data(), dv_d.data(), ds_d.data());
  flash_attention_backward(d, mask, bias, scale, drop, q.data(), k.data(), v.data(), out_flash.data(),
                           lse.data(), dout.data(), dq_f.data(), dk_f.data(), dv_f.data(), ds_f.data());
  EXPECT_LT(max_abs_diff(dq_d, dq_f), 2e-5f * std::max(1.0f, max_abs(dq_d))) << "dq";
  EXPECT_LT(max_abs_diff(dk_d, dk_f), 2e-5f * std::max(1.0f, max_abs(dk_d))) << "dk";
  EXPECT_LT(max_abs_diff(dv_d, dv_f), 2e-5f * std::max(1.0f, max_abs(dv_d))) << "dv";
  EXPECT_LT(max_abs_diff(ds_d, ds_f), 2e-5f * std::max(1.0f, max_abs(ds_d))) << "dscores";
}

TEST(FlashAttention, MatchesDenseKernel) {
  const Case cases[] = {
      {.name = "plain"},
      {.name = "causal, queries after cached keys", .causal = true, .query_offset = 150},
      {.name = "causal self-attention", .k_len = 150, .causal = true},
      {.name = "sliding window", .k_len = 150, .causal = true, .window = 40},
      // Global tokens beyond the first key tile, a window shorter than a tile: rows see two key ranges.
      {.name = "block-sparse, causal", .q_len = 300, .k_len = 300, .causal = true, .window = 30, .global = 5},
      {.name = "block-sparse, global keys past a tile, padding",
       .q_len = 300,
       .k_len = 300,
       .causal = true,
       .right_padding = true,
       .window = 20,
       .global = 140},
      {.name = "block-sparse, bidirectional", .q_len = 300, .k_len = 300, .window = 50, .global = 3},
      {.name = "block-sparse, cached queries",
       .q_len = 3,
       .causal = true,
       .query_offset = 297,
       .window = 16,
       .global = 4},
      {.name = "right padding", .right_padding = true},
      {.name = "left padding, causal: rows with no key", .k_len = 150, .causal = true, .left_padding = true},
      {.name = "the same, HF's additive mask",
       .k_len = 150,
       .causal = true,
       .additive = true,
       .left_padding = true},
      {.name = "dropout", .k_len = 150, .causal = true, .right_padding = true, .dropout = 0.2f},
      {.name = "bias per head", .bias_dims = 3},
      {.name = "bias per row, causal", .k_len = 150, .causal = true, .bias_dims = 4},
      {.name = "alibi", .k_len = 150, .causal = true, .alibi = true},
      {.name = "one query (a decoding step)", .q_len = 1, .causal = true, .query_offset = 299},
      {.name = "multi-query, head_dim 64", .heads = 4, .kv_heads = 1, .head_dim = 64},
  };
  for (const Case& c : cases) run_case(c);
}

}  // namespace
}  // namespace tfm::kernels
