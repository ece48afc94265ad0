#include "models/config.h"

#include <set>

#include "core/error.h"

namespace tfm {

namespace {

const char* norm_name(kernels::NormKind k) {
  return k == kernels::NormKind::SeedLayerNorm ? "seed" : "layernorm";
}

}  // namespace

void ModelConfig::validate() const {
  auto need = [](bool ok, const char* what) {
    if (!ok) fail("invalid model config: {}", what);
  };
  need(src_vocab > 0 && tgt_vocab > 0, "vocabulary sizes must be positive");
  need(d_model > 0 && heads > 0 && d_model % heads == 0, "d_model must be a positive multiple of heads");
  need(d_ff > 0, "d_ff must be positive");
  need(encoder_layers >= 0 && decoder_layers >= 0, "layer counts must not be negative");
  need(max_len > 0, "max_len must be positive");
  need(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)");
  need(norm_eps > 0, "norm_eps must be positive");
  need(!share_embeddings || src_vocab == tgt_vocab,
       "share_embeddings needs equal source and target vocabularies");
}

nlohmann::json to_json(const ModelConfig& c) {
  return {{"arch", "encoder-decoder"},
          {"src_vocab", c.src_vocab},
          {"tgt_vocab", c.tgt_vocab},
          {"d_model", c.d_model},
          {"heads", c.heads},
          {"d_ff", c.d_ff},
          {"encoder_layers", c.encoder_layers},
          {"decoder_layers", c.decoder_layers},
          {"max_len", c.max_len},
          {"dropout", c.dropout},
          {"norm", norm_name(c.norm)},
          {"norm_position", c.norm_position == NormPosition::Pre ? "pre" : "post"},
          {"norm_eps", c.norm_eps},
          {"final_norm", c.final_norm},
          {"positions", "sinusoidal"},
          {"activation", "relu"},
          {"attention_bias", c.attention_bias},
          {"ffn_bias", c.ffn_bias},
          {"output_bias", c.output_bias},
          {"scale_embeddings", c.scale_embeddings},
          {"share_embeddings", c.share_embeddings},
          {"tie_output", c.tie_output},
          {"pad_id", c.pad_id},
          {"bos_id", c.bos_id},
          {"eos_id", c.eos_id}};
}

ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& origin) {
  return with_context(origin, [&] {
    if (!j.is_object()) fail("model config must be a JSON object");
    ModelConfig c;
    std::set<std::string> seen;
    auto get = [&](const char* key, auto& field) {
      seen.insert(key);
      if (!j.contains(key)) fail("model config: missing key '{}'", key);
      try {
        j.at(key).get_to(field);
      } catch (const nlohmann::json::exception& e) {
        fail("model config: key '{}': {}", key, e.what());
      }
    };
    auto get_choice = [&](const char* key, std::initializer_list<const char*> allowed) {
      std::string v;
      get(key, v);
      for (const char* a : allowed)
        if (v == a) return v;
      fail("model config: key '{}' has unsupported value '{}'", key, v);
    };
    get_choice("arch", {"encoder-decoder"});
    get("src_vocab", c.src_vocab);
    get("tgt_vocab", c.tgt_vocab);
    get("d_model", c.d_model);
    get("heads", c.heads);
    get("d_ff", c.d_ff);
    get("encoder_layers", c.encoder_layers);
    get("decoder_layers", c.decoder_layers);
    get("max_len", c.max_len);
    get("dropout", c.dropout);
    c.norm = get_choice("norm", {"seed", "layernorm"}) == "seed" ? kernels::NormKind::SeedLayerNorm
                                                                 : kernels::NormKind::LayerNorm;
    c.norm_position =
        get_choice("norm_position", {"pre", "post"}) == "pre" ? NormPosition::Pre : NormPosition::Post;
    get("norm_eps", c.norm_eps);
    get("final_norm", c.final_norm);
    get_choice("positions", {"sinusoidal"});
    get_choice("activation", {"relu"});
    get("attention_bias", c.attention_bias);
    get("ffn_bias", c.ffn_bias);
    get("output_bias", c.output_bias);
    get("scale_embeddings", c.scale_embeddings);
    get("share_embeddings", c.share_embeddings);
    get("tie_output", c.tie_output);
    get("pad_id", c.pad_id);
    get("bos_id", c.bos_id);
    get("eos_id", c.eos_id);
    for (auto& [key, value] : j.items())
      if (!seen.count(key)) fail("model config: unknown key '{}'", key);
    c.validate();
    return c;
  });
}

}  // namespace tfm
