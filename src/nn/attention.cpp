#include "nn/attention.h"

#include <cmath>

namespace tfm::nn {

MultiHeadAttention::MultiHeadAttention(ParameterStore& store, const std::string& name, int64_t d_model, int h,
                                       bool bias, float p)
    : q_proj(store, name + ".q_proj", d_model, d_model, bias),
      k_proj(store, name + ".k_proj", d_model, d_model, bias),
      v_proj(store, name + ".v_proj", d_model, d_model, bias),
      out_proj(store, name + ".out_proj", d_model, d_model, bias),
      heads(h),
      dropout(p) {}

ag::Var MultiHeadAttention::forward(Context& c, ag::Var x, ag::Var memory, const AttentionMask& mask) const {
  ag::Var q = q_proj.forward(c, x);
  ag::Var k = k_proj.forward(c, memory);
  ag::Var v = v_proj.forward(c, memory);
  ag::AttentionOptions o;
  o.heads = heads;
  o.scale = 1.0f / std::sqrt(float(x.shape().back() / heads));
  o.key_valid = mask.key_valid;
  o.causal = mask.causal;
  o.dropout = dropout;
  o.rng = c.rng;
  o.keep_probs = keep_probs;
  return out_proj.forward(c, ag::attention(q, k, v, o, c.training));
}

}  // namespace tfm::nn
