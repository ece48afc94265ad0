#include "nn/attention.h"

#include <cmath>

#include "core/error.h"

namespace tfm::nn {

MultiHeadAttention::MultiHeadAttention(ParameterStore& store, const std::string& name, const AttentionSpec& s)
    : q_proj(store, name + ".q_proj", s.d_model, s.heads * s.head_dim, s.bias),
      k_proj(store, name + ".k_proj", s.d_model, s.kv_heads * s.head_dim, s.bias),
      v_proj(store, name + ".v_proj", s.d_model, s.kv_heads * s.head_dim, s.bias),
      out_proj(store, name + ".out_proj", s.heads * s.head_dim, s.d_model, s.bias),
      spec(s) {}

ag::Var MultiHeadAttention::forward(Context& c, ag::Var x, ag::Var memory, const AttentionMask& mask) const {
  if (spec.kv_heads != spec.heads) fail("grouped-query attention not implemented yet");
  if (mask.window > 0) fail("sliding-window attention not implemented yet");
  switch (spec.positions) {
    case PositionKind::SinusoidalInterleaved:
    case PositionKind::SinusoidalHalf:
    case PositionKind::Learned:
      break;  // added to the embeddings
    case PositionKind::RoPE:
      fail("RoPE not implemented yet");  // wire ag::rope on q and k here
    case PositionKind::ALiBi:
      fail("ALiBi not implemented yet");  // wire the ALiBi score bias here
    case PositionKind::T5Relative:
      fail("T5 relative position bias not implemented yet");  // wire the bucketed score bias here
  }
  ag::Var q = q_proj.forward(c, x);
  ag::Var k = k_proj.forward(c, memory);
  ag::Var v = v_proj.forward(c, memory);
  ag::AttentionOptions o;
  o.heads = spec.heads;
  o.scale = spec.scale ? 1.0f / std::sqrt(float(spec.head_dim)) : 1.0f;
  o.key_valid = mask.key_valid;
  o.causal = mask.causal;
  o.dropout = spec.dropout;
  o.rng = c.rng;
  o.keep_probs = keep_probs;
  return out_proj.forward(c, ag::attention(q, k, v, o, c.training));
}

}  // namespace tfm::nn
