// Hugging Face BLOOM (model_type "bloom"): decoder-only, pre-LayerNorm, a LayerNorm right after the word
// embeddings (word_embeddings_layernorm), no position embeddings but ALiBi biases on the attention
// scores (slopes per head, key positions from the attention mask: build_alibi_tensor), GELU with the
// tanh approximation (bloom_gelu_forward), biases everywhere, a final ln_f and the output tied to the
// word embeddings. One query_key_value Linear holds, for every head in turn, its query, key and value
// rows (the output is viewed as [heads, 3, head_dim]): a placement with groups = heads, parts = 3.
#include <regex>

#include "models/family.h"
#include "models/family_util.h"

namespace tfm {

namespace {

bool bloom_matches(const nlohmann::json& j) { return j.value("model_type", "") == "bloom"; }

ModelConfig bloom_config(const nlohmann::json& j) {
  HfConfig hf(j);
  if (hf.get<bool>("apply_residual_connection_post_layernorm", false))
    fail("config.json: apply_residual_connection_post_layernorm is not supported");
  ModelConfig c;
  read_stack(hf, {"hidden_size", "n_head", "n_layer"}, Arch::DecoderOnly, c);
  c.d_ff = 4 * c.d_model;
  // ALiBi has no position table; seq_length (when given) is the training context.
  c.max_len = hf.get<int64_t>("seq_length", 2048);
  c.dropout = hf.get<float>("hidden_dropout", 0.0f);
  c.attention_dropout = hf.get<float>("attention_dropout", 0.0f);
  c.activation_dropout = 0.0f;
  set_layer_norm(hf, "layer_norm_epsilon", 1e-5f, NormPosition::Pre, /*final_norm=*/true, c);
  c.embedding_norm = true;
  c.positions = PositionKind::ALiBi;
  c.activation = Activation::GeluTanh;
  c.attention_bias = c.ffn_bias = true;
  c.output_bias = false;
  c.tie_output = hf.get<bool>("tie_word_embeddings", true);
  c.bos_id = hf.get<int64_t>("bos_token_id", 1);
  c.eos_id = hf.get<int64_t>("eos_token_id", 2);
  c.pad_id = hf.get<int64_t>("pad_token_id", c.eos_id);
  c.mask_decoder_padding = false;
  c.additive_mask = true;
  c.validate();
  return c;
}

Placement bloom_placement(const std::string& name, const ModelConfig& config) {
  static const std::pair<std::regex, const char*> renames[] = {
      {std::regex(R"(^decoder\.embed_tokens\.)"), "transformer.word_embeddings."},
      {std::regex(R"(^decoder\.layernorm_embedding\.)"), "transformer.word_embeddings_layernorm."},
      {std::regex(R"(^decoder\.layer_norm\.)"), "transformer.ln_f."},
      {std::regex(R"(^decoder\.layers\.)"), "transformer.h."},
      {std::regex(R"(\.self_attn\.out_proj\.)"), ".self_attention.dense."},
      {std::regex(R"(\.self_attn_layer_norm\.)"), ".input_layernorm."},
      {std::regex(R"(\.final_layer_norm\.)"), ".post_attention_layernorm."},
      {std::regex(R"(\.fc1\.)"), ".mlp.dense_h_to_4h."},
      {std::regex(R"(\.fc2\.)"), ".mlp.dense_4h_to_h."},
  };
  if (std::optional<QkvParameter> qkv = qkv_parameter(name)) {
    return {.name = "transformer.h." + qkv->layer + ".self_attention.query_key_value." + qkv->kind,
            .parts = 3,
            .part = qkv->part,
            .groups = config.heads};
  }
  std::string s = name;
  for (const auto& [re, replacement] : renames) s = std::regex_replace(s, re, replacement);
  return {.name = s};
}

bool bloom_ignored(const std::string& name) { return name == "lm_head.weight"; }

}  // namespace

extern const Family kBloomFamily = {"bloom", bloom_matches, bloom_config, bloom_placement, bloom_ignored};

}  // namespace tfm
