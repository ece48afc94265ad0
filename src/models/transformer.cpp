#include "models/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include <fmt/ranges.h>

#include "core/error.h"
#include "kernels/cpu/embedding.h"
#include "nn/positions.h"

namespace tfm {

namespace {

// Uniform in [-a, a) from 53 random bits (std::uniform_real_distribution differs across libraries).
float uniform(std::mt19937_64& gen, float a) {
  return float((double(gen() >> 11) * 0x1.0p-53 * 2.0 - 1.0) * a);
}

// PEFT's initialisation of a LoRA A [r, in]: kaiming_uniform_(A, a=sqrt(5)), whose bound
// sqrt(6 / ((1 + 5) fan_in)) is 1 / sqrt(in).
void init_lora_a(Parameter& a, std::mt19937_64& gen) {
  const float bound = 1.0f / std::sqrt(float(a.value.size(1)));
  float* v = a.value.f32();
  for (int64_t i = 0; i < a.value.numel(); ++i) v[i] = uniform(gen, bound);
}

std::string layer_name(const char* stack, int i) {
  return std::string(stack) + ".layers." + std::to_string(i) + ".";
}

// I64 [batch, len] holding 0, 1, ..., len - 1 in every row.
Tensor position_ids(int64_t batch, int64_t len) {
  Tensor t = Tensor::empty({batch, len}, DType::I64);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < len; ++i) t.data<int64_t>()[b * len + i] = i;
  return t;
}

}  // namespace

nn::Norm Transformer::make_norm(const std::string& name, NormType type, bool bias) {
  nn::Norm n(params_, name, config_.d_model, type, config_.norm_eps, bias);
  norm_params_.push_back(n.weight);
  if (n.bias) norm_params_.push_back(n.bias);
  return n;
}

namespace {

// The fixed position table of a sinusoidal kind (undefined for the others).
Tensor sinusoid_for(const ModelConfig& c) {
  if (c.positions == PositionKind::SinusoidalInterleaved) return nn::sinusoidal_table(c.max_len, c.d_model);
  if (c.positions == PositionKind::SinusoidalHalf) return nn::sinusoidal_half_table(c.max_len, c.d_model);
  return Tensor();
}

}  // namespace

void Transformer::extend_positions(int64_t max_len) {
  if (max_len <= config_.max_len) return;
  if (config_.positions == PositionKind::Learned)
    fail("learned positions cover {} positions; there is no embedding for position {} and beyond",
         config_.max_len, config_.max_len);
  config_.max_len = max_len;
  for (Stack* s : {&encoder_, &decoder_})
    if (s->embed.sinusoid.defined()) s->embed.sinusoid = sinusoid_for(config_);
}

Stack Transformer::build_stack(const char* name, Parameter* tokens, int layers, bool cross_attn) {
  const ModelConfig& c = config_;
  const std::string stack = name;
  Stack s;
  s.embed.tokens = tokens;
  s.embed.sinusoid = sinusoid_for(c);
  switch (c.positions) {
    case PositionKind::SinusoidalInterleaved:
    case PositionKind::SinusoidalHalf:
      break;
    case PositionKind::Learned:
      s.embed.positions = &params_.add(stack + ".embed_positions.weight", {c.max_len, c.d_model});
      break;
    case PositionKind::RoPE:
    case PositionKind::ALiBi:
    case PositionKind::T5Relative:
      break;  // inside attention
  }
  if (c.token_types > 0 && stack == "encoder")
    s.embed.token_types = &params_.add("encoder.embed_token_types.weight", {c.token_types, c.d_model});
  s.embed.has_norm = c.embedding_norm;
  if (c.embedding_norm) s.embed.norm = make_norm(stack + ".layernorm_embedding", c.norm, c.norm_bias);

  nn::AttentionSpec spec{.d_model = c.d_model,
                         .heads = c.heads,
                         .kv_heads = c.key_value_heads(),
                         .head_dim = c.attention_head_dim(),
                         .bias = c.attention_bias,
                         .scale = c.scale_attention,
                         .dropout = c.attention_dropout,
                         .positions = c.positions,
                         .rope_theta = c.rope_theta,
                         .linear = c.attention == AttentionKind::Linear};
  nn::AttentionSpec cross_spec = spec;
  cross_spec.kv_heads = c.heads;
  cross_spec.positions = PositionKind::SinusoidalInterleaved;  // none inside cross-attention
  cross_spec.linear = false;
  for (int i = 0; i < layers; ++i) {
    std::string p = layer_name(name, i);
    TransformerLayer& l = s.layers.emplace_back();
    l.self_attn = nn::MultiHeadAttention(params_, p + "self_attn", spec);
    // T5 keeps one relative-position table per stack, in its first layer.
    if (c.positions == PositionKind::T5Relative && i == 0)
      l.self_attn.relative_attention_bias =
          &params_.add(p + "self_attn.relative_attention_bias.weight", {c.relative_buckets, c.heads});
    l.self_attn_norm = make_norm(p + "self_attn_layer_norm", c.norm, c.norm_bias);
    if (cross_attn) {
      l.has_cross_attn = true;
      l.cross_attn = nn::MultiHeadAttention(params_, p + "encoder_attn", cross_spec);
      l.cross_attn_norm = make_norm(p + "encoder_attn_layer_norm", c.norm, c.norm_bias);
    }
    if (c.experts > 0) {
      l.moe = std::make_unique<MixtureOfExperts>();
      l.moe->router = nn::Linear(params_, p + "moe.router", c.d_model, c.experts, false);
      for (int e = 0; e < c.experts; ++e)
        l.moe->experts.emplace_back(params_, p + "moe.experts." + std::to_string(e) + ".", c.d_model, c.d_ff,
                                    c.ffn_bias, c.activation, c.activation_dropout);
    } else {
      l.ffn = nn::FeedForward(params_, p, c.d_model, c.d_ff, c.ffn_bias, c.activation, c.activation_dropout);
    }
    l.ffn_norm = make_norm(p + "final_layer_norm", c.norm, c.norm_bias);
  }
  s.has_final_norm = c.final_norm;
  if (c.final_norm) s.final_norm = make_norm(stack + ".layer_norm", c.norm, c.norm_bias);
  return s;
}

Transformer::Transformer(const ModelConfig& config) : config_(config) {
  config_.validate();
  const ModelConfig& c = config_;
  Parameter* src_table = nullptr;
  Parameter* tgt_table = nullptr;
  if (c.share_embeddings) {
    src_table = tgt_table = &params_.add("shared.weight", {c.tgt_vocab, c.d_model});
  } else {
    if (c.arch != Arch::DecoderOnly)
      src_table = &params_.add("encoder.embed_tokens.weight", {c.src_vocab, c.d_model});
    if (c.arch != Arch::EncoderOnly)
      tgt_table = &params_.add("decoder.embed_tokens.weight", {c.tgt_vocab, c.d_model});
  }
  if (c.arch != Arch::DecoderOnly) encoder_ = build_stack("encoder", src_table, c.encoder_layers, false);
  if (c.arch != Arch::EncoderOnly)
    decoder_ = build_stack("decoder", tgt_table, c.decoder_layers, c.arch == Arch::EncoderDecoder);
  if (c.lm_head_transform) {
    head_dense_ = nn::Linear(params_, "lm_head.transform.dense", c.d_model, c.d_model, true);
    head_norm_ = make_norm("lm_head.transform.layer_norm", c.norm, c.norm_bias);
  }
  // An encoder-only model predicts source tokens with its output layer.
  Parameter* out_table = c.arch == Arch::EncoderOnly ? src_table : tgt_table;
  lm_head_weight_ = c.tie_output ? out_table : &params_.add("lm_head.weight", {c.tgt_vocab, c.d_model});
  if (c.output_bias) lm_head_bias_ = &params_.add("lm_head.bias", {c.tgt_vocab});
  if (c.final_logits_bias) {
    final_logits_bias_ = &params_.add("final_logits_bias", {c.tgt_vocab});
    final_logits_bias_->trainable = false;
  }
  if (!c.lora.empty()) add_lora(nn::parse_lora_spec(c.lora), 0);
}

void Transformer::add_lora(const nn::LoraSpec& spec, uint64_t seed) {
  if (!lora_.empty()) fail("the model has LoRA adapters already ({})", config_.lora);
  std::set<std::string> wanted;
  for (const std::string& t : spec.targets)
    for (const std::string& name : nn::lora_target_projections(t)) wanted.insert(name);
  std::mt19937_64 gen(seed);
  for (nn::Linear* l : projections()) {
    const std::string name = l->weight->name.substr(0, l->weight->name.size() - std::strlen(".weight"));
    if (!wanted.count(name.substr(name.rfind('.') + 1))) continue;
    const int64_t out = l->weight->shape()[0], in = l->weight->shape()[1];
    nn::LoraAdapter& a = lora_.emplace_back();
    a.a = &params_.add(name + ".lora_A.weight", {spec.rank, in});
    a.b = &params_.add(name + ".lora_B.weight", {out, spec.rank});  // zeros
    a.scale = float(spec.alpha / double(spec.rank));
    a.dropout = float(spec.dropout);
    init_lora_a(*a.a, gen);
    l->lora = &a;
  }
  if (lora_.empty()) fail("LoRA: no projection of this model is named {}", fmt::join(wanted, " or "));
  config_.lora = nn::to_string(spec);
}

void Transformer::init_weights(uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto is_norm = [&](const Parameter* p) {
    return std::find(norm_params_.begin(), norm_params_.end(), p) != norm_params_.end();
  };
  for (Parameter* p : params_.list()) {
    const Shape& s = p->value.shape();
    float* v = p->value.f32();
    if (!p->trainable || p->name.ends_with(".lora_B.weight")) {
      p->value.zero_();
    } else if (p->name.ends_with(".lora_A.weight")) {
      init_lora_a(*p, gen);
    } else if (s.size() == 2) {  // Xavier/Glorot uniform: a = sqrt(6 / (fan_in + fan_out))
      float a = std::sqrt(6.0f / float(s[0] + s[1]));
      for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = uniform(gen, a);
    } else if (is_norm(p)) {
      p->value.fill_(p->name.ends_with(".weight") ? 1.0f : 0.0f);
    } else {  // a Linear bias: fan_in is the input width of its weight
      std::string wname = p->name.substr(0, p->name.size() - 4) + "weight";
      const Parameter* w = params_.find(wname);
      float a = w ? 1.0f / std::sqrt(float(w->value.size(1))) : 0.0f;
      for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = uniform(gen, a);
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

// A table in a storage type (the tied output layer of a quantized model) is read from it: inference only, as
// every quantized weight.
ag::Var Transformer::token_embedding(nn::Context& c, Parameter& table, const Tensor& ids) const {
  if (!table.quantized)
    return ag::embedding(c.tape.param(table), ids, config_.embedding_scale,
                         config_.freeze_pad_embedding ? config_.pad_id : -1);
  if (c.tape.grad_enabled())
    fail("{}: a {} weight has no gradient (train from the float32 model, or dequantize it)", table.name,
         kernels::format_name(table.quantized->format));
  const Tensor flat = ids.contiguous();
  Shape shape = ids.shape();
  shape.push_back(table.quantized->cols);
  Tensor y = Tensor::empty(shape);
  kernels::quantized_embedding_forward(*table.quantized, flat.data<int64_t>(), flat.numel(),
                                       config_.embedding_scale, y.f32());
  return c.tape.leaf(y, false);
}

ag::Var Transformer::embed(nn::Context& c, const Embeddings& e, const Tensor& ids,
                           const Tensor& token_types) const {
  ag::Var x = token_embedding(c, *e.tokens, ids);
  if (e.sinusoid.defined()) x = ag::add_positions(x, e.sinusoid);
  if (e.positions) {
    if (ids.size(1) > config_.max_len)
      fail("sequence of {} positions exceeds the model's maximum length of {}", ids.size(1), config_.max_len);
    x = ag::add(x, ag::embedding(c.tape.param(*e.positions), position_ids(ids.size(0), ids.size(1)), 1.0f));
  }
  if (e.token_types) {
    Tensor types = token_types;
    if (!types.defined()) {
      types = Tensor::empty(ids.shape(), DType::I64);
      std::fill(types.data<int64_t>(), types.data<int64_t>() + types.numel(), int64_t(0));
    }
    x = ag::add(x, ag::embedding(c.tape.param(*e.token_types), types, 1.0f));
  }
  if (e.has_norm) x = e.norm.forward(c, x);
  return ag::dropout(x, config_.dropout, c.rng, c.training);
}

// Pre-norm (the seed's ResidualConnection, GPT-2): x + dropout(f(norm(x))).
// Post-norm (the paper, Marian, BERT): norm(x + dropout(f(x))).
template <typename F>
ag::Var Transformer::sublayer(nn::Context& c, ag::Var x, const nn::Norm& norm, F f) const {
  if (config_.norm_position == NormPosition::Pre)
    return ag::add(x, ag::dropout(f(norm.forward(c, x)), config_.dropout, c.rng, c.training));
  return norm.forward(c, ag::add(x, ag::dropout(f(x), config_.dropout, c.rng, c.training)));
}

// Every layer of `stack`: self-attention, cross-attention (decoder of an encoder-decoder), feed-forward,
// each a sublayer; then the stack's final norm. The attentions are called with the layer's index.
template <typename SelfAttention, typename CrossAttention>
ag::Var Transformer::run_layers(nn::Context& c, const Stack& stack, ag::Var x, SelfAttention self_attention,
                                CrossAttention cross_attention) const {
  for (size_t i = 0; i < stack.layers.size(); ++i) {
    const TransformerLayer& l = stack.layers[i];
    x = sublayer(c, x, l.self_attn_norm, [&](ag::Var h) { return self_attention(i, h); });
    if (l.has_cross_attn)
      x = sublayer(c, x, l.cross_attn_norm, [&](ag::Var h) { return cross_attention(i, h); });
    x = sublayer(c, x, l.ffn_norm, [&](ag::Var h) { return feed_forward(c, l, h); });
  }
  return stack.has_final_norm ? stack.final_norm.forward(c, x) : x;
}

ag::Var Transformer::feed_forward(nn::Context& c, const TransformerLayer& l, ag::Var h) const {
  return l.moe ? mixture_of_experts(c, *l.moe, h) : l.ffn.forward(c, h);
}

// Mixtral's sparse MoE block: each token goes to its top-k experts; the output is the sum of their
// outputs weighted by the router's renormalised probabilities. Each expert runs once on the tokens
// routed to it (gather), and its weighted rows are added back in place (scatter).
ag::Var Transformer::mixture_of_experts(nn::Context& c, const MixtureOfExperts& moe, ag::Var h) const {
  const Shape shape = h.shape();
  const int64_t tokens = h.value().numel() / config_.d_model, k = config_.experts_top_k;
  ag::Var x = ag::reshape(h, {tokens, config_.d_model});
  ag::Var logits = moe.router.forward(c, x);
  if (c.router_logits) c.router_logits->push_back(logits);
  ag::Routing routing = ag::router_top_k(logits, int(k));
  ag::Var weights = ag::reshape(routing.weights, {tokens * k, 1});
  std::vector<ag::ExpertBatch> batches = ag::group_by_expert(routing.experts, config_.experts);
  ag::Var out;
  for (size_t e = 0; e < batches.size(); ++e) {
    const ag::ExpertBatch& b = batches[e];
    if (b.tokens.numel() == 0) continue;  // no token chose this expert
    ag::Var y = moe.experts[e].forward(c, ag::gather_rows(x, b.tokens));
    ag::Var part = ag::scatter_add_rows(y, b.tokens, tokens, ag::gather_rows(weights, b.slots));
    out = out.defined() ? ag::add(out, part) : part;
  }
  return ag::reshape(out, shape);
}

ag::Var Transformer::load_balancing_loss(std::span<const ag::Var> router_logits,
                                         const Tensor& key_valid) const {
  TFM_CHECK(!router_logits.empty(),
            "load_balancing_loss: no router logits (not a mixture-of-experts model?)");
  Tensor valid = key_valid;
  if (valid.defined()) valid = valid.view({valid.numel()});
  return ag::load_balancing_loss(router_logits, config_.experts_top_k, valid);
}

ag::Var Transformer::run_stack(nn::Context& c, const Stack& stack, ag::Var x,
                               const nn::AttentionMask& self_mask, ag::Var memory,
                               const nn::AttentionMask& cross_mask) const {
  // T5: one relative position bias per stack, from its first layer's table, added in every layer (HF's
  // T5Stack hands layer 0's position_bias on); bidirectional buckets in the encoder, causal in the decoder.
  ag::Var position_bias;
  if (config_.positions == PositionKind::T5Relative && !stack.layers.empty()) {
    const int64_t len = x.shape()[1];
    position_bias =
        ag::relative_position_bias(c.tape.param(*stack.layers[0].self_attn.relative_attention_bias), len, len,
                                   !self_mask.causal, config_.relative_max_distance);
  }
  return run_layers(
      c, stack, x,
      [&](size_t i, ag::Var h) {
        return stack.layers[i].self_attn.forward(c, h, h, self_mask, position_bias);
      },
      [&](size_t i, ag::Var h) { return stack.layers[i].cross_attn.forward(c, h, memory, cross_mask); });
}

ag::Var Transformer::encode(nn::Context& c, const Tensor& src_ids, const Tensor& valid,
                            const Tensor& token_types) const {
  TFM_CHECK(config_.arch != Arch::DecoderOnly, "encode: a decoder-only model has no encoder");
  nn::AttentionMask mask{valid.defined() ? valid : key_valid(src_ids), false, 0, 0, config_.additive_mask};
  return run_stack(c, encoder_, embed(c, encoder_.embed, src_ids, token_types), mask, {}, {});
}

ag::Var Transformer::decode(nn::Context& c, ag::Var memory, const Tensor& src_ids,
                            const Tensor& tgt_ids) const {
  TFM_CHECK(config_.arch == Arch::EncoderDecoder, "decode: not an encoder-decoder model");
  nn::AttentionMask self_mask{config_.mask_decoder_padding ? key_valid(tgt_ids) : Tensor(), true,
                              config_.sliding_window, config_.global_tokens, config_.additive_mask};
  nn::AttentionMask cross_mask{key_valid(src_ids), false, 0, 0, config_.additive_mask};
  return run_stack(c, decoder_, embed(c, decoder_.embed, tgt_ids, {}), self_mask, memory, cross_mask);
}

ag::Var Transformer::decode_only(nn::Context& c, const Tensor& ids, const Tensor& valid) const {
  TFM_CHECK(config_.arch == Arch::DecoderOnly, "decode_only: not a decoder-only model");
  nn::AttentionMask mask{valid, true, config_.sliding_window, config_.global_tokens, config_.additive_mask};
  return run_stack(c, decoder_, embed(c, decoder_.embed, ids, {}), mask, {}, {});
}

ag::Var Transformer::project(nn::Context& c, ag::Var hidden) const {
  ag::Var h = hidden;
  if (config_.lm_head_transform)
    h = head_norm_.forward(c, nn::activate(head_dense_.forward(c, h), config_.activation));
  if (config_.output_scale != 1.0f) h = ag::scale(h, config_.output_scale);
  ag::Var bias;
  if (lm_head_bias_) bias = c.tape.param(*lm_head_bias_);
  if (final_logits_bias_) {
    ag::Var fixed = c.tape.param(*final_logits_bias_);  // untrained: no gradient
    bias = bias.defined() ? ag::add(bias, fixed) : fixed;
  }
  // bfloat16 quantizes the output layer too (models/quantize.h).
  if (ag::Var y = nn::quantized_forward(c, h, *lm_head_weight_, bias.defined() ? bias.value() : Tensor());
      y.defined())
    return y;
  return ag::linear(h, c.tape.param(*lm_head_weight_), bias);
}

ag::Var Transformer::loss(nn::Context& c, const Tensor& src_ids, const Tensor& tgt_in, const Tensor& labels,
                          float label_smoothing) const {
  ag::Var memory = encode(c, src_ids);
  ag::Var logits = project(c, decode(c, memory, src_ids, tgt_in));
  return ag::cross_entropy(logits, labels, config_.pad_id, label_smoothing);
}

std::pair<Tensor, Tensor> Transformer::cross_keys_values(nn::Context& c, int layer, ag::Var memory) const {
  const nn::MultiHeadAttention& a = decoder_.layers.at(size_t(layer)).cross_attn;
  return {a.k_proj.forward(c, memory).value(), a.v_proj.forward(c, memory).value()};
}

ag::Var Transformer::decode_cached(nn::Context& c, const Tensor& ids, const Tensor& positions,
                                   std::span<const nn::CachedRows> self,
                                   std::span<const nn::CachedRows> cross) const {
  TFM_CHECK(config_.arch != Arch::EncoderOnly, "decode_cached: an encoder-only model has no decoder");
  TFM_CHECK(self.size() == decoder_.layers.size() && (cross.empty() || cross.size() == self.size()),
            "decode_cached: caches for {} and {} layers, the decoder has {}", self.size(), cross.size(),
            decoder_.layers.size());
  const int64_t tokens = ids.numel();
  const int64_t* pos = positions.data<int64_t>();
  for (int64_t t = 0; t < tokens; ++t)
    if (pos[t] >= config_.max_len)
      fail("position {} exceeds the model's maximum length of {} positions", pos[t], config_.max_len);
  const Tensor ids_row = ids.view({1, tokens}), pos_row = positions.view({1, tokens});
  const Embeddings& e = decoder_.embed;
  ag::Var x = token_embedding(c, *e.tokens, ids_row);
  if (e.sinusoid.defined()) x = ag::add(x, ag::embedding(c.tape.leaf(e.sinusoid), pos_row, 1.0f));
  if (e.positions) x = ag::add(x, ag::embedding(c.tape.param(*e.positions), pos_row, 1.0f));
  if (e.has_norm) x = e.norm.forward(c, x);
  nn::CachedSelf cached{
      .positions = pos_row, .window = config_.sliding_window, .global = config_.global_tokens};
  if (config_.positions == PositionKind::T5Relative && !decoder_.layers.empty()) {
    cached.relative_table = decoder_.layers[0].self_attn.relative_attention_bias;
    cached.relative_max_distance = config_.relative_max_distance;
  }
  return run_layers(
      c, decoder_, x,
      [&](size_t i, ag::Var h) { return decoder_.layers[i].self_attn.forward_cached(c, h, self[i], cached); },
      [&](size_t i, ag::Var h) {
        return decoder_.layers[i].cross_attn.forward_cross_cached(c, h, cross[i]);
      });
}

void Transformer::freeze_all_but_lora() {
  std::set<const Parameter*> adapters;
  for (const nn::LoraAdapter& a : lora_) adapters.insert({a.a, a.b});
  for (Parameter* p : params_.list())
    if (!adapters.count(p)) {
      p->trainable = false;
      p->grad = Tensor();
    }
}

std::vector<nn::Linear*> Transformer::projections() {
  std::vector<nn::Linear*> out;
  auto add = [&](nn::Linear& l) {
    if (l.weight) out.push_back(&l);
  };
  auto add_ffn = [&](nn::FeedForward& f) {
    add(f.fc1);
    add(f.fc_gate);
    add(f.fc2);
  };
  for (Stack* stack : {&encoder_, &decoder_})
    for (TransformerLayer& l : stack->layers) {
      for (nn::MultiHeadAttention* a : {&l.self_attn, &l.cross_attn})
        if (a == &l.self_attn || l.has_cross_attn)
          for (nn::Linear* p : {&a->q_proj, &a->k_proj, &a->v_proj, &a->out_proj}) add(*p);
      if (l.moe)
        for (nn::FeedForward& e : l.moe->experts) add_ffn(e);
      else
        add_ffn(l.ffn);
    }
  return out;
}

std::vector<Parameter*> Transformer::projection_weights() {
  std::vector<Parameter*> out;
  for (nn::Linear* l : projections()) out.push_back(l->weight);
  return out;
}

void Transformer::set_keep_attention(bool on) {
  maps_ = AttentionMaps();
  if (on) {
    maps_.encoder_self.resize(encoder_.layers.size());
    maps_.decoder_self.resize(decoder_.layers.size());
    maps_.decoder_cross.resize(decoder_.layers.size());
  }
  for (size_t i = 0; i < encoder_.layers.size(); ++i)
    encoder_.layers[i].self_attn.keep_probs = on ? &maps_.encoder_self[i] : nullptr;
  for (size_t i = 0; i < decoder_.layers.size(); ++i) {
    TransformerLayer& l = decoder_.layers[i];
    l.self_attn.keep_probs = on ? &maps_.decoder_self[i] : nullptr;
    if (l.has_cross_attn) l.cross_attn.keep_probs = on ? &maps_.decoder_cross[i] : nullptr;
  }
}

}  // namespace tfm
