// The seed document's PyTorch Transformer (document 004; shared/peers/seed_transformer.py):
// config keys src_vocab, tgt_vocab, src_len, tgt_len, d, N, h, dropout, d_ff, pad, sos, eos, and its
// module names (src_embed.embedding, self_attention_block.w_q, residual_connections.0.norm.alpha, ...).
#include <cmath>
#include <regex>

#include "core/error.h"
#include "models/family.h"

namespace tfm {

namespace {

bool seed_matches(const nlohmann::json& j) {
  return j.is_object() && j.contains("src_vocab") && j.contains("d") && j.contains("N") && j.contains("h");
}

ModelConfig seed_config(const nlohmann::json& j) {
  ModelConfig c;
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) fail("missing key '{}'", key);
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception& e) {
      fail("key '{}': {}", key, e.what());
    }
  };
  int64_t src_len = 0, tgt_len = 0;
  int layers = 0;
  get("src_vocab", c.src_vocab);
  get("tgt_vocab", c.tgt_vocab);
  get("src_len", src_len);
  get("tgt_len", tgt_len);
  get("d", c.d_model);
  get("N", layers);
  get("h", c.heads);
  get("dropout", c.dropout);
  c.attention_dropout = c.activation_dropout = c.dropout;  // the seed uses one rate everywhere
  get("d_ff", c.d_ff);
  get("pad", c.pad_id);
  get("sos", c.bos_id);
  get("eos", c.eos_id);
  c.encoder_layers = c.decoder_layers = layers;
  c.max_len = std::max(src_len, tgt_len);
  c.norm = NormType::SeedLayerNorm;
  c.norm_eps = 1e-6f;
  c.norm_position = NormPosition::Pre;
  if (j.contains("norm_position") && j["norm_position"] == "post") c.norm_position = NormPosition::Post;
  c.final_norm = true;
  c.attention_bias = false;
  c.ffn_bias = true;
  c.output_bias = true;
  c.embedding_scale = std::sqrt(float(c.d_model));
  c.share_embeddings = false;
  c.tie_output = false;
  c.validate();
  return c;
}

Placement seed_placement(const std::string& name, const ModelConfig&) {
  static const std::pair<std::regex, const char*> rules[] = {
      {std::regex(R"(^encoder\.embed_tokens\.)"), "src_embed.embedding."},
      {std::regex(R"(^decoder\.embed_tokens\.)"), "tgt_embed.embedding."},
      {std::regex(R"(^lm_head\.)"), "projection_layer."},
      {std::regex(R"(^(encoder|decoder)\.layer_norm\.weight$)"), "$1.norm.alpha"},
      {std::regex(R"(^(encoder|decoder)\.layer_norm\.bias$)"), "$1.norm.bias"},
      {std::regex(R"(\.self_attn\.)"), ".self_attention_block."},
      {std::regex(R"(\.encoder_attn\.)"), ".cross_attention_block."},
      {std::regex(R"(_block\.(q|k|v)_proj\.)"), "_block.w_$1."},
      {std::regex(R"(_block\.out_proj\.)"), "_block.w_o."},
      {std::regex(R"(\.fc1\.)"), ".feed_forward_block.linear_1."},
      {std::regex(R"(\.fc2\.)"), ".feed_forward_block.linear_2."},
      // The seed numbers its residual blocks: 0 self-attention, then cross-attention (decoder), then FFN.
      {std::regex(R"(\.self_attn_layer_norm\.)"), ".residual_connections.0.norm."},
      {std::regex(R"(\.encoder_attn_layer_norm\.)"), ".residual_connections.1.norm."},
      {std::regex(R"(^(encoder\.layers\.\d+)\.final_layer_norm\.)"), "$1.residual_connections.1.norm."},
      {std::regex(R"(^(decoder\.layers\.\d+)\.final_layer_norm\.)"), "$1.residual_connections.2.norm."},
      {std::regex(R"(\.norm\.weight$)"), ".norm.alpha"},
  };
  std::string s = name;
  for (const auto& [re, replacement] : rules) s = std::regex_replace(s, re, replacement);
  return {.name = s};
}

// The sinusoidal tables PositionalEncoding registers as buffers.
bool seed_buffer(const std::string& name) { return name == "src_pos.pe" || name == "tgt_pos.pe"; }

}  // namespace

extern const Family kSeedFamily = {"seed", seed_matches, seed_config, seed_placement, seed_buffer};

}  // namespace tfm
