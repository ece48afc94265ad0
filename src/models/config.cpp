#include "models/config.h"

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "core/error.h"

namespace tfm {

namespace {

// The JSON spelling of each enum value.
template <typename E>
using Names = std::vector<std::pair<E, const char*>>;

const Names<Arch>& names(Arch) {
  static const Names<Arch> n{{Arch::EncoderDecoder, "encoder-decoder"},
                             {Arch::DecoderOnly, "decoder-only"},
                             {Arch::EncoderOnly, "encoder-only"}};
  return n;
}
const Names<NormType>& names(NormType) {
  static const Names<NormType> n{
      {NormType::SeedLayerNorm, "seed"}, {NormType::LayerNorm, "layernorm"}, {NormType::RMSNorm, "rmsnorm"}};
  return n;
}
const Names<NormPosition>& names(NormPosition) {
  static const Names<NormPosition> n{{NormPosition::Pre, "pre"}, {NormPosition::Post, "post"}};
  return n;
}
const Names<PositionKind>& names(PositionKind) {
  static const Names<PositionKind> n{{PositionKind::SinusoidalInterleaved, "sinusoidal"},
                                     {PositionKind::SinusoidalHalf, "sinusoidal-half"},
                                     {PositionKind::Learned, "learned"},
                                     {PositionKind::RoPE, "rope"},
                                     {PositionKind::ALiBi, "alibi"},
                                     {PositionKind::T5Relative, "t5-relative"}};
  return n;
}
const Names<AttentionKind>& names(AttentionKind) {
  static const Names<AttentionKind> n{{AttentionKind::Softmax, "softmax"}, {AttentionKind::Linear, "linear"}};
  return n;
}
const Names<Activation>& names(Activation) {
  static const Names<Activation> n{{Activation::ReLU, "relu"},
                                   {Activation::GeluErf, "gelu"},
                                   {Activation::GeluTanh, "gelu-tanh"},
                                   {Activation::SwiGLU, "swiglu"}};
  return n;
}

// Calls f(key, field) for every field, in the order to_json writes them.
template <typename Config, typename F>
void for_each_field(Config& c, F&& f) {
  f("arch", c.arch);
  f("src_vocab", c.src_vocab);
  f("tgt_vocab", c.tgt_vocab);
  f("d_model", c.d_model);
  f("heads", c.heads);
  f("kv_heads", c.kv_heads);
  f("head_dim", c.head_dim);
  f("d_ff", c.d_ff);
  f("encoder_layers", c.encoder_layers);
  f("decoder_layers", c.decoder_layers);
  f("max_len", c.max_len);
  f("dropout", c.dropout);
  f("attention_dropout", c.attention_dropout);
  f("activation_dropout", c.activation_dropout);
  f("norm", c.norm);
  f("norm_position", c.norm_position);
  f("norm_eps", c.norm_eps);
  f("norm_bias", c.norm_bias);
  f("final_norm", c.final_norm);
  f("embedding_norm", c.embedding_norm);
  f("positions", c.positions);
  f("rope_theta", c.rope_theta);
  f("relative_buckets", c.relative_buckets);
  f("relative_max_distance", c.relative_max_distance);
  f("activation", c.activation);
  f("attention", c.attention);
  f("sliding_window", c.sliding_window);
  f("global_tokens", c.global_tokens);
  f("scale_attention", c.scale_attention);
  f("attention_bias", c.attention_bias);
  f("ffn_bias", c.ffn_bias);
  f("output_bias", c.output_bias);
  f("final_logits_bias", c.final_logits_bias);
  f("lm_head_transform", c.lm_head_transform);
  f("embedding_scale", c.embedding_scale);
  f("output_scale", c.output_scale);
  f("share_embeddings", c.share_embeddings);
  f("tie_output", c.tie_output);
  f("token_types", c.token_types);
  f("freeze_pad_embedding", c.freeze_pad_embedding);
  f("experts", c.experts);
  f("experts_top_k", c.experts_top_k);
  f("router_aux_loss_coef", c.router_aux_loss_coef);
  f("pad_id", c.pad_id);
  f("bos_id", c.bos_id);
  f("eos_id", c.eos_id);
  f("mask_decoder_padding", c.mask_decoder_padding);
  f("additive_mask", c.additive_mask);
  f("forbid_pad", c.forbid_pad);
  f("forced_eos", c.forced_eos);
  f("lora", c.lora);
}

template <typename T>
nlohmann::json field_json(const T& v) {
  if constexpr (std::is_enum_v<T>) {
    for (const auto& [value, name] : names(v))
      if (value == v) return name;
    fail("unnamed enum value {}", int(v));
  } else {
    return v;
  }
}

template <typename T>
void field_from_json(const nlohmann::json& j, const char* key, T& out) {
  if constexpr (std::is_enum_v<T>) {
    std::string s, allowed;
    field_from_json(j, key, s);
    for (const auto& [value, name] : names(out)) {
      if (s == name) {
        out = value;
        return;
      }
      allowed += (allowed.empty() ? "" : ", ") + std::string(name);
    }
    fail("model config: key '{}' has unsupported value '{}' (supported: {})", key, s, allowed);
  } else {
    try {
      j.get_to(out);
    } catch (const nlohmann::json::exception& e) {
      fail("model config: key '{}': {}", key, e.what());
    }
  }
}

}  // namespace

void ModelConfig::validate() const {
  auto need = [](bool ok, const char* field, const char* rule) {
    if (!ok) fail("invalid model config: {}: {}", field, rule);
  };
  bool enc = arch != Arch::DecoderOnly, dec = arch != Arch::EncoderOnly;
  need(src_vocab > 0, "src_vocab", "must be positive");
  need(tgt_vocab > 0, "tgt_vocab", "must be positive");
  need(arch == Arch::EncoderDecoder || src_vocab == tgt_vocab, "src_vocab",
       "a single-stack model has one vocabulary (src_vocab == tgt_vocab)");
  need(d_model > 0, "d_model", "must be positive");
  need(heads > 0, "heads", "must be positive");
  need(head_dim > 0 || d_model % heads == 0, "d_model", "must be a multiple of heads (or set head_dim)");
  need(head_dim >= 0, "head_dim", "must not be negative");
  need(kv_heads >= 0 && heads % key_value_heads() == 0, "kv_heads", "must divide heads (0: equal to heads)");
  need(d_ff > 0, "d_ff", "must be positive");
  need(encoder_layers >= 0, "encoder_layers", "must not be negative");
  need(decoder_layers >= 0, "decoder_layers", "must not be negative");
  need(enc || encoder_layers == 0, "encoder_layers", "a decoder-only model has none");
  need(dec || decoder_layers == 0, "decoder_layers", "an encoder-only model has none");
  need(max_len > 0, "max_len", "must be positive");
  need(dropout >= 0 && dropout < 1, "dropout", "must be in [0, 1)");
  need(attention_dropout >= 0 && attention_dropout < 1, "attention_dropout", "must be in [0, 1)");
  need(activation_dropout >= 0 && activation_dropout < 1, "activation_dropout", "must be in [0, 1)");
  need(norm_eps > 0, "norm_eps", "must be positive");
  need(norm != NormType::RMSNorm || !norm_bias, "norm_bias", "RMSNorm has no bias");
  need(rope_theta > 0, "rope_theta", "must be positive");
  need(relative_buckets > 0, "relative_buckets", "must be positive");
  need(relative_max_distance > 0, "relative_max_distance", "must be positive");
  need(sliding_window >= 0, "sliding_window", "must not be negative");
  need(global_tokens >= 0, "global_tokens", "must not be negative");
  const bool linear = attention == AttentionKind::Linear;
  need(!linear || (sliding_window == 0 && global_tokens == 0), "attention",
       "linear attention has no sliding window or global tokens");
  need(!linear || (positions != PositionKind::ALiBi && positions != PositionKind::T5Relative), "attention",
       "linear attention has no scores for ALiBi or T5's relative biases");
  need(token_types >= 0, "token_types", "must not be negative");
  need(experts >= 0, "experts", "must not be negative");
  need(experts == 0 || (experts_top_k > 0 && experts_top_k <= experts), "experts_top_k",
       "must be in [1, experts]");
  need(router_aux_loss_coef >= 0, "router_aux_loss_coef", "must not be negative");
  need(!share_embeddings || src_vocab == tgt_vocab, "share_embeddings",
       "needs equal source and target vocabularies");
  need(arch == Arch::EncoderDecoder || !share_embeddings, "share_embeddings", "needs an encoder-decoder");
  // Not checked against the vocabulary: HF configs name ids outside small test vocabularies (GPT-2's 50256).
  need(pad_id >= 0, "pad_id", "must not be negative");
  need(bos_id >= 0, "bos_id", "must not be negative");
  need(eos_id >= 0, "eos_id", "must not be negative");
}

nlohmann::json to_json(const ModelConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  for_each_field(c, [&](const char* key, const auto& field) { j[key] = field_json(field); });
  return j;
}

namespace {

// Checkpoints written before the Hugging Face families (tfm's first format) describe the seed's
// encoder-decoder only: they lack every key added since, each of which then takes its default (the
// seed's behaviour), and say `scale_embeddings` (multiply by sqrt(d_model) or not) where
// `embedding_scale` (the factor) is now. Any other JSON is returned unchanged.
nlohmann::json upgrade_first_format(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("scale_embeddings") || j.contains("embedding_scale")) return j;
  nlohmann::json upgraded = to_json(ModelConfig{});
  for (const auto& [key, value] : j.items())
    if (key != "scale_embeddings") upgraded[key] = value;
  const bool scaled = j.at("scale_embeddings").is_boolean() && j.at("scale_embeddings").get<bool>();
  const double d_model =
      j.contains("d_model") && j.at("d_model").is_number() ? j.at("d_model").get<double>() : 0;
  upgraded["embedding_scale"] = scaled ? std::sqrt(d_model) : 1.0;
  return upgraded;
}

}  // namespace

ModelConfig model_config_from_json(const nlohmann::json& original, const std::string& origin) {
  return with_context(origin, [&] {
    // Checkpoints made before attention and activation dropout were separate used `dropout` for both.
    nlohmann::json with_dropouts = original;
    if (original.is_object() && original.contains("dropout"))
      for (const char* key : {"attention_dropout", "activation_dropout"})
        if (!original.contains(key)) with_dropouts[key] = original["dropout"];
    // Keys added since the first Hugging Face families take the behaviour before them when missing.
    const nlohmann::json defaults = to_json(ModelConfig{});
    if (original.is_object())
      for (const char* key : {"lora", "attention", "global_tokens"})
        if (!original.contains(key)) with_dropouts[key] = defaults[key];
    const nlohmann::json j = upgrade_first_format(with_dropouts);
    if (!j.is_object()) fail("model config must be a JSON object");
    ModelConfig c;
    std::set<std::string> seen;
    for_each_field(c, [&](const char* key, auto& field) {
      seen.insert(key);
      if (!j.contains(key)) fail("model config: missing key '{}'", key);
      field_from_json(j.at(key), key, field);
    });
    for (auto& [key, value] : j.items())
      if (!seen.count(key)) fail("model config: unknown key '{}'", key);
    c.validate();
    return c;
  });
}

}  // namespace tfm
