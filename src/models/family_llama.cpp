// Hugging Face Llama (model_type "llama") and Mistral ("mistral", the same block with sliding-window
// attention): decoder-only, RMSNorm before each sublayer and at the end (model.norm), rotary positions
// (rotate-half, rope_theta), grouped-query attention (num_key_value_heads), a SwiGLU MLP
// down_proj(silu(gate_proj(x)) * up_proj(x)), no biases by default, an untied lm_head.
#include <regex>

#include "models/family.h"
#include "models/family_llama.h"
#include "models/family_util.h"

namespace tfm {

ModelConfig llama_block_config(const HfConfig& hf) {
  ModelConfig c;
  read_stack(hf, {"hidden_size", "num_attention_heads", "num_hidden_layers"}, Arch::DecoderOnly, c);
  c.kv_heads = hf.get<int>("num_key_value_heads", c.heads);
  c.head_dim = hf.get<int64_t>("head_dim", c.d_model / c.heads);
  c.d_ff = hf.need<int64_t>("intermediate_size");
  c.max_len = hf.need<int64_t>("max_position_embeddings");
  c.dropout = c.activation_dropout = 0.0f;  // Llama drops out attention probabilities only
  c.attention_dropout = hf.get<float>("attention_dropout", 0.0f);
  c.norm = NormType::RMSNorm;
  c.norm_bias = false;
  c.norm_eps = hf.need<float>("rms_norm_eps");
  c.norm_position = NormPosition::Pre;
  c.final_norm = true;
  c.positions = PositionKind::RoPE;
  // transformers 5 nests RoPE settings in rope_parameters; older configs have rope_theta / rope_scaling.
  if (hf.has("rope_parameters")) {
    const nlohmann::json& rope = hf.json().at("rope_parameters");
    HfConfig r(rope);
    std::string type = r.get<std::string>("rope_type", "default");
    if (type != "default")
      fail("config.json: rope_parameters.rope_type '{}' is not supported (default)", type);
    c.rope_theta = r.get<float>("rope_theta", 10000.0f);
  } else {
    if (hf.has("rope_scaling")) fail("config.json: rope_scaling is not supported");
    c.rope_theta = hf.get<float>("rope_theta", 10000.0f);
  }
  std::string act = hf.get<std::string>("hidden_act", "silu");
  if (act != "silu") fail("config.json: hidden_act '{}' is not supported (silu)", act);
  c.activation = Activation::SwiGLU;
  c.attention_bias = hf.get<bool>("attention_bias", false);
  c.ffn_bias = hf.get<bool>("mlp_bias", false);
  c.output_bias = false;
  c.tie_output = hf.get<bool>("tie_word_embeddings", false);
  c.bos_id = hf.get<int64_t>("bos_token_id", 1);
  c.eos_id = hf.get<int64_t>("eos_token_id", 2);
  c.pad_id = hf.get<int64_t>("pad_token_id", c.eos_id);  // usually none: EOS pads
  c.mask_decoder_padding = false;
  c.additive_mask = true;
  return c;
}

std::string llama_block_name(const std::string& name) {
  static const std::pair<std::regex, const char*> renames[] = {
      {std::regex(R"(^decoder\.embed_tokens\.)"), "model.embed_tokens."},
      {std::regex(R"(^decoder\.layer_norm\.)"), "model.norm."},
      {std::regex(R"(^decoder\.layers\.)"), "model.layers."},
      {std::regex(R"(\.self_attn\.out_proj\.)"), ".self_attn.o_proj."},
      {std::regex(R"(\.self_attn_layer_norm\.)"), ".input_layernorm."},
      {std::regex(R"(\.final_layer_norm\.)"), ".post_attention_layernorm."},
  };
  std::string s = name;
  for (const auto& [re, replacement] : renames) s = std::regex_replace(s, re, replacement);
  return s;
}

namespace {

bool llama_matches(const nlohmann::json& j) { return j.value("model_type", "") == "llama"; }
bool mistral_matches(const nlohmann::json& j) { return j.value("model_type", "") == "mistral"; }

ModelConfig llama_config(const nlohmann::json& j) {
  HfConfig hf(j);
  if (hf.get<int>("pretraining_tp", 1) != 1)
    fail("config.json: pretraining_tp other than 1 is not supported");
  ModelConfig c = llama_block_config(hf);
  c.validate();
  return c;
}

ModelConfig mistral_config(const nlohmann::json& j) {
  HfConfig hf(j);
  ModelConfig c = llama_block_config(hf);
  c.sliding_window = hf.get<int64_t>("sliding_window", 0);  // null: full causal attention
  c.validate();
  return c;
}

// fc_gate, fc1, fc2 are the SwiGLU MLP's gate_proj, up_proj, down_proj.
Placement llama_placement(const std::string& name, const ModelConfig&) {
  static const std::pair<std::regex, const char*> mlp[] = {
      {std::regex(R"(\.fc_gate\.)"), ".mlp.gate_proj."},
      {std::regex(R"(\.fc1\.)"), ".mlp.up_proj."},
      {std::regex(R"(\.fc2\.)"), ".mlp.down_proj."},
  };
  std::string s = llama_block_name(name);
  for (const auto& [re, replacement] : mlp) s = std::regex_replace(s, re, replacement);
  return {.name = s};
}

// Rotary inverse-frequency buffers older checkpoints saved; lm_head.weight when tied (a copy of the
// table; when untied it is a parameter and never reaches this test).
bool llama_ignored(const std::string& name) {
  static const std::regex inv_freq(R"(^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$)");
  return name == "lm_head.weight" || std::regex_match(name, inv_freq);
}

}  // namespace

extern const Family kLlamaFamily = {"llama", llama_matches, llama_config, llama_placement, llama_ignored};
extern const Family kMistralFamily = {"mistral", mistral_matches, mistral_config, llama_placement,
                                      llama_ignored};

}  // namespace tfm
