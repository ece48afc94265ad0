#include "models/transformer.h"

#include <cmath>
#include <random>

#include "nn/positions.h"

namespace tfm {

namespace {

std::string layer_name(const char* stack, int i) {
  return std::string(stack) + ".layers." + std::to_string(i) + ".";
}

}  // namespace

Transformer::Transformer(const ModelConfig& config) : config_(config) {
  config_.validate();
  const ModelConfig& c = config_;
  if (c.share_embeddings) {
    src_embed_ = tgt_embed_ = &params_.add("shared.weight", {c.tgt_vocab, c.d_model});
  } else {
    src_embed_ = &params_.add("encoder.embed_tokens.weight", {c.src_vocab, c.d_model});
    tgt_embed_ = &params_.add("decoder.embed_tokens.weight", {c.tgt_vocab, c.d_model});
  }
  auto norm = [&](const std::string& name) { return nn::Norm(params_, name, c.d_model, c.norm, c.norm_eps); };
  for (int i = 0; i < c.encoder_layers; ++i) {
    std::string p = layer_name("encoder", i);
    EncoderLayer& l = encoder_.emplace_back();
    l.self_attn =
        nn::MultiHeadAttention(params_, p + "self_attn", c.d_model, c.heads, c.attention_bias, c.dropout);
    l.self_attn_norm = norm(p + "self_attn_layer_norm");
    l.ffn = nn::FeedForward(params_, p, c.d_model, c.d_ff, c.ffn_bias, c.dropout);
    l.ffn_norm = norm(p + "final_layer_norm");
  }
  if (c.final_norm) encoder_norm_ = norm("encoder.layer_norm");
  for (int i = 0; i < c.decoder_layers; ++i) {
    std::string p = layer_name("decoder", i);
    DecoderLayer& l = decoder_.emplace_back();
    l.self_attn =
        nn::MultiHeadAttention(params_, p + "self_attn", c.d_model, c.heads, c.attention_bias, c.dropout);
    l.self_attn_norm = norm(p + "self_attn_layer_norm");
    l.cross_attn =
        nn::MultiHeadAttention(params_, p + "encoder_attn", c.d_model, c.heads, c.attention_bias, c.dropout);
    l.cross_attn_norm = norm(p + "encoder_attn_layer_norm");
    l.ffn = nn::FeedForward(params_, p, c.d_model, c.d_ff, c.ffn_bias, c.dropout);
    l.ffn_norm = norm(p + "final_layer_norm");
  }
  if (c.final_norm) decoder_norm_ = norm("decoder.layer_norm");
  lm_head_weight_ = c.tie_output ? tgt_embed_ : &params_.add("lm_head.weight", {c.tgt_vocab, c.d_model});
  if (c.output_bias) lm_head_bias_ = &params_.add("lm_head.bias", {c.tgt_vocab});
  positions_ = nn::sinusoidal_table(c.max_len, c.d_model);
}

void Transformer::init_weights(uint64_t seed) {
  std::mt19937_64 gen(seed);
  // Uniform in [-a, a) from 53 random bits (std::uniform_real_distribution differs across libraries).
  auto uniform = [&](float a) { return float((double(gen() >> 11) * 0x1.0p-53 * 2.0 - 1.0) * a); };
  for (Parameter* p : params_.list()) {
    const Shape& s = p->value.shape();
    float* v = p->value.f32();
    if (s.size() == 2) {  // Xavier/Glorot uniform: a = sqrt(6 / (fan_in + fan_out))
      float a = std::sqrt(6.0f / float(s[0] + s[1]));
      for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = uniform(a);
    } else if (p->name.ends_with("layer_norm.weight")) {
      p->value.fill_(1.0f);
    } else if (p->name.ends_with("layer_norm.bias")) {
      p->value.zero_();
    } else {  // a Linear bias: fan_in is the input width of its weight
      std::string wname = p->name.substr(0, p->name.size() - 4) + "weight";
      const Parameter* w = params_.find(wname);
      float a = w ? 1.0f / std::sqrt(float(w->value.size(1))) : 0.0f;
      for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = uniform(a);
    }
  }
}

Tensor Transformer::key_valid(const Tensor& ids) const {
  Tensor m = Tensor::empty(ids.shape(), DType::U8);
  const int64_t* p = ids.data<int64_t>();
  uint8_t* q = m.data<uint8_t>();
  for (int64_t i = 0; i < ids.numel(); ++i) q[i] = p[i] != config_.pad_id;
  return m;
}

ag::Var Transformer::embed(nn::Context& c, const Parameter& table, const Tensor& ids) const {
  float s = config_.scale_embeddings ? std::sqrt(float(config_.d_model)) : 1.0f;
  ag::Var x = ag::embedding(c.tape.param(const_cast<Parameter&>(table)), ids, s);
  x = ag::add_positions(x, positions_);
  return ag::dropout(x, config_.dropout, c.rng, c.training);
}

// Pre-norm (the seed's ResidualConnection): x + dropout(f(norm(x))).
// Post-norm (the paper): norm(x + dropout(f(x))).
template <typename F>
ag::Var Transformer::sublayer(nn::Context& c, ag::Var x, const nn::Norm& norm, F f) const {
  if (config_.norm_position == NormPosition::Pre)
    return ag::add(x, ag::dropout(f(norm.forward(c, x)), config_.dropout, c.rng, c.training));
  return norm.forward(c, ag::add(x, ag::dropout(f(x), config_.dropout, c.rng, c.training)));
}

ag::Var Transformer::encode(nn::Context& c, const Tensor& src_ids) const {
  nn::AttentionMask mask{key_valid(src_ids), false};
  ag::Var x = embed(c, *src_embed_, src_ids);
  for (const EncoderLayer& l : encoder_) {
    x = sublayer(c, x, l.self_attn_norm, [&](ag::Var h) { return l.self_attn.forward(c, h, h, mask); });
    x = sublayer(c, x, l.ffn_norm, [&](ag::Var h) { return l.ffn.forward(c, h); });
  }
  return config_.final_norm ? encoder_norm_.forward(c, x) : x;
}

ag::Var Transformer::decode(nn::Context& c, ag::Var memory, const Tensor& src_ids,
                            const Tensor& tgt_ids) const {
  nn::AttentionMask self_mask{key_valid(tgt_ids), true};
  nn::AttentionMask cross_mask{key_valid(src_ids), false};
  ag::Var x = embed(c, *tgt_embed_, tgt_ids);
  for (const DecoderLayer& l : decoder_) {
    x = sublayer(c, x, l.self_attn_norm, [&](ag::Var h) { return l.self_attn.forward(c, h, h, self_mask); });
    x = sublayer(c, x, l.cross_attn_norm,
                 [&](ag::Var h) { return l.cross_attn.forward(c, h, memory, cross_mask); });
    x = sublayer(c, x, l.ffn_norm, [&](ag::Var h) { return l.ffn.forward(c, h); });
  }
  return config_.final_norm ? decoder_norm_.forward(c, x) : x;
}

ag::Var Transformer::project(nn::Context& c, ag::Var hidden) const {
  return ag::linear(hidden, c.tape.param(*lm_head_weight_),
                    lm_head_bias_ ? c.tape.param(*lm_head_bias_) : ag::Var());
}

ag::Var Transformer::loss(nn::Context& c, const Tensor& src_ids, const Tensor& tgt_in, const Tensor& labels,
                          float label_smoothing) const {
  ag::Var memory = encode(c, src_ids);
  ag::Var logits = project(c, decode(c, memory, src_ids, tgt_in));
  return ag::cross_entropy(logits, labels, config_.pad_id, label_smoothing);
}

void Transformer::set_keep_attention(bool on) {
  maps_ = AttentionMaps();
  if (on) {
    maps_.encoder_self.resize(encoder_.size());
    maps_.decoder_self.resize(decoder_.size());
    maps_.decoder_cross.resize(decoder_.size());
  }
  for (size_t i = 0; i < encoder_.size(); ++i)
    encoder_[i].self_attn.keep_probs = on ? &maps_.encoder_self[i] : nullptr;
  for (size_t i = 0; i < decoder_.size(); ++i) {
    decoder_[i].self_attn.keep_probs = on ? &maps_.decoder_self[i] : nullptr;
    decoder_[i].cross_attn.keep_probs = on ? &maps_.decoder_cross[i] : nullptr;
  }
}

}  // namespace tfm
