// Hugging Face GPT-2 (model_type "gpt2"): a decoder-only pre-LN Transformer with learned positions, a
// final LayerNorm (ln_f), GELU (tanh approximation: "gelu_new"), and the output tied to the token
// table. Its linear layers are Conv1D modules that store weights (in, out), and one c_attn holds the
// query, key and value projections side by side: both undone here by placements.
#include <regex>

#include "models/family.h"
#include "models/family_util.h"

namespace tfm {

namespace {

bool gpt2_matches(const nlohmann::json& j) { return j.value("model_type", "") == "gpt2"; }

ModelConfig gpt2_config(const nlohmann::json& j) {
  HfConfig hf(j);
  if (hf.get<bool>("scale_attn_by_inverse_layer_idx", false))
    fail("config.json: scale_attn_by_inverse_layer_idx is not supported");
  ModelConfig c;
  read_stack(hf, {"n_embd", "n_head", "n_layer"}, Arch::DecoderOnly, c);
  c.d_ff = hf.get<int64_t>("n_inner", 4 * c.d_model);
  c.max_len = hf.need<int64_t>("n_positions");
  c.dropout = hf.get<float>("resid_pdrop", 0.1f);
  c.attention_dropout = hf.get<float>("attn_pdrop", 0.1f);
  c.activation_dropout = 0.0f;
  set_layer_norm(hf, "layer_norm_epsilon", 1e-5f, NormPosition::Pre, /*final_norm=*/true, c);
  c.positions = PositionKind::Learned;
  c.activation = read_activation(hf, "activation_function", "gelu_new");
  c.scale_attention = hf.get<bool>("scale_attn_weights", true);
  c.attention_bias = c.ffn_bias = true;
  c.output_bias = false;
  c.embedding_scale = 1.0f;
  c.tie_output = hf.get<bool>("tie_word_embeddings", true);
  c.eos_id = hf.need<int64_t>("eos_token_id");
  c.bos_id = hf.get<int64_t>("bos_token_id", c.eos_id);
  c.pad_id = hf.get<int64_t>("pad_token_id", c.eos_id);  // GPT-2 has none; its EOS pads
  c.mask_decoder_padding = false;
  c.additive_mask = true;
  c.validate();
  return c;
}

Placement gpt2_placement(const std::string& name, const ModelConfig&) {
  static const std::pair<std::regex, const char*> renames[] = {
      {std::regex(R"(^decoder\.embed_tokens\.)"), "transformer.wte."},
      {std::regex(R"(^decoder\.embed_positions\.)"), "transformer.wpe."},
      {std::regex(R"(^decoder\.layer_norm\.)"), "transformer.ln_f."},
      {std::regex(R"(^decoder\.layers\.(\d+)\.)"), "transformer.h.$1."},
      {std::regex(R"(\.self_attn\.out_proj\.)"), ".attn.c_proj."},
      {std::regex(R"(\.self_attn_layer_norm\.)"), ".ln_1."},
      {std::regex(R"(\.final_layer_norm\.)"), ".ln_2."},
      {std::regex(R"(\.fc1\.)"), ".mlp.c_fc."},
      {std::regex(R"(\.fc2\.)"), ".mlp.c_proj."},
  };
  if (std::optional<QkvParameter> qkv = qkv_parameter(name)) {
    return {.name = "transformer.h." + qkv->layer + ".attn.c_attn." + qkv->kind,
            .transposed = qkv->kind == "weight",
            .parts = 3,
            .part = qkv->part};
  }
  std::string s = name;
  for (const auto& [re, replacement] : renames) s = std::regex_replace(s, re, replacement);
  // Conv1D weights are stored (in, out); embeddings and norms are not Conv1D.
  bool conv1d = s.ends_with(".weight") &&
                (s.find(".attn.") != std::string::npos || s.find(".mlp.") != std::string::npos);
  return {.name = s, .transposed = conv1d};
}

// The causal-mask buffers old checkpoints saved, and the tied head's copy of wte.
bool gpt2_ignored(const std::string& name) {
  static const std::regex buffers(R"(^transformer\.h\.\d+\.attn\.(bias|masked_bias)$)");
  return name == "lm_head.weight" || std::regex_match(name, buffers);
}

}  // namespace

extern const Family kGpt2Family = {"gpt2", gpt2_matches, gpt2_config, gpt2_placement, gpt2_ignored};

}  // namespace tfm
