#include "nn/attention.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tfm::nn {

namespace {

// BLOOM's ALiBi key positions from the key padding mask (every key real when it is undefined).
Tensor alibi_positions(const Tensor& key_valid, int64_t batch, int64_t k_len) {
  if (key_valid.defined()) return ag::alibi_key_positions(key_valid);
  Tensor all_real = Tensor::empty({batch, k_len}, DType::U8);
  std::fill_n(all_real.data<uint8_t>(), all_real.numel(), uint8_t(1));
  return ag::alibi_key_positions(all_real);
}

}  // namespace

MultiHeadAttention::MultiHeadAttention(ParameterStore& store, const std::string& name, const AttentionSpec& s)
    : q_proj(store, name + ".q_proj", s.d_model, s.heads * s.head_dim, s.bias),
      k_proj(store, name + ".k_proj", s.d_model, s.kv_heads * s.head_dim, s.bias),
      v_proj(store, name + ".v_proj", s.d_model, s.kv_heads * s.head_dim, s.bias),
      out_proj(store, name + ".out_proj", s.heads * s.head_dim, s.d_model, s.bias),
      spec(s) {}

ag::Var MultiHeadAttention::forward(Context& c, ag::Var x, ag::Var memory, const AttentionMask& mask,
                                    ag::Var score_bias) const {
  ag::Var q = q_proj.forward(c, x);
  ag::Var k = k_proj.forward(c, memory);
  ag::Var v = v_proj.forward(c, memory);
  ag::AttentionOptions o;
  o.heads = spec.heads;
  o.kv_heads = spec.kv_heads;
  o.scale = spec.scale ? 1.0f / std::sqrt(float(spec.head_dim)) : 1.0f;
  o.key_valid = mask.key_valid;
  o.causal = mask.causal;
  o.window = mask.window;
  o.additive_mask = mask.additive;
  o.dropout = spec.dropout;
  o.rng = c.rng;
  o.keep_probs = keep_probs;
  switch (spec.positions) {
    case PositionKind::SinusoidalInterleaved:
    case PositionKind::SinusoidalHalf:
    case PositionKind::Learned:
      break;  // added to the embeddings
    case PositionKind::RoPE:
      // Positions 0, 1, ... in every row, as HF's forward without position_ids (left padding included).
      q = ag::rope(q, 0, spec.heads, spec.rope_theta);
      k = ag::rope(k, 0, spec.kv_heads, spec.rope_theta);
      break;
    case PositionKind::ALiBi:
      o.alibi_slopes = ag::alibi_slopes(spec.heads);
      o.alibi_positions = alibi_positions(mask.key_valid, memory.shape()[0], memory.shape()[1]);
      break;
    case PositionKind::T5Relative:
      TFM_CHECK(score_bias.defined(), "T5 relative attention needs the stack's position bias");
      break;
  }
  return out_proj.forward(c, ag::attention(q, k, v, o, c.training, score_bias));
}

}  // namespace tfm::nn
