// Hugging Face T5 (model_type "t5"): an encoder-decoder with pre-norm T5LayerNorm (RMS, no mean, no
// bias), bucketed relative position biases (one table per stack, in its first layer, shared by all its
// layers; bidirectional in the encoder, causal in the decoder; none in cross-attention), no 1/sqrt(d)
// attention scaling, no biases, a ReLU feed-forward (wi, wo), final norms, one shared embedding table,
// and, when the output is tied to it, the last hidden state scaled by d_model^-0.5 before it.
#include <cmath>
#include <regex>

#include "models/family.h"
#include "models/family_util.h"

namespace tfm {

namespace {

bool t5_matches(const nlohmann::json& j) { return j.value("model_type", "") == "t5"; }

ModelConfig t5_config(const nlohmann::json& j) {
  HfConfig hf(j);
  std::string ffn = hf.get<std::string>("feed_forward_proj", "relu");
  if (ffn != "relu") fail("config.json: feed_forward_proj '{}' is not supported (relu)", ffn);
  ModelConfig c;
  c.arch = Arch::EncoderDecoder;
  c.src_vocab = c.tgt_vocab = hf.need<int64_t>("vocab_size");
  c.d_model = hf.need<int64_t>("d_model");
  c.heads = hf.need<int>("num_heads");
  c.head_dim = hf.need<int64_t>("d_kv");
  c.d_ff = hf.need<int64_t>("d_ff");
  c.encoder_layers = hf.need<int>("num_layers");
  c.decoder_layers = hf.get<int>("num_decoder_layers", c.encoder_layers);
  c.max_len = hf.get<int64_t>("n_positions", 512);  // relative positions have no table; T5's usual context
  c.dropout = c.attention_dropout = c.activation_dropout = hf.get<float>("dropout_rate", 0.1f);
  c.norm = NormType::RMSNorm;
  c.norm_bias = false;
  c.norm_eps = hf.get<float>("layer_norm_epsilon", 1e-6f);
  c.norm_position = NormPosition::Pre;
  c.final_norm = true;
  c.positions = PositionKind::T5Relative;
  c.relative_buckets = hf.get<int>("relative_attention_num_buckets", 32);
  c.relative_max_distance = hf.get<int>("relative_attention_max_distance", 128);
  c.activation = Activation::ReLU;
  c.scale_attention = false;
  c.attention_bias = c.ffn_bias = c.output_bias = false;
  c.share_embeddings = true;
  c.tie_output = hf.get<bool>("tie_word_embeddings", true);
  c.output_scale = c.tie_output ? 1.0f / std::sqrt(float(c.d_model)) : 1.0f;
  c.pad_id = hf.need<int64_t>("pad_token_id");
  c.bos_id = hf.get<int64_t>("decoder_start_token_id", c.pad_id);
  c.eos_id = hf.need<int64_t>("eos_token_id");
  c.mask_decoder_padding = false;  // the decoder is masked causally only (it starts with the pad token)
  c.additive_mask = true;
  read_forced_eos(hf, c);
  c.validate();
  return c;
}

// Encoder block N: layer.0 = self-attention, layer.1 = feed-forward. Decoder block N: layer.0 =
// self-attention, layer.1 = cross-attention (EncDecAttention), layer.2 = feed-forward.
Placement t5_placement(const std::string& name, const ModelConfig&) {
  static const std::pair<std::regex, const char*> renames[] = {
      {std::regex(R"(^(encoder|decoder)\.layer_norm\.)"), "$1.final_layer_norm."},
      {std::regex(R"(^(encoder|decoder)\.layers\.)"), "$1.block."},
      {std::regex(R"(\.self_attn\.([qkv])_proj\.)"), ".layer.0.SelfAttention.$1."},
      {std::regex(R"(\.self_attn\.out_proj\.)"), ".layer.0.SelfAttention.o."},
      {std::regex(R"(\.self_attn\.relative_attention_bias\.)"),
       ".layer.0.SelfAttention.relative_attention_bias."},
      {std::regex(R"(\.self_attn_layer_norm\.)"), ".layer.0.layer_norm."},
      {std::regex(R"(\.encoder_attn\.([qkv])_proj\.)"), ".layer.1.EncDecAttention.$1."},
      {std::regex(R"(\.encoder_attn\.out_proj\.)"), ".layer.1.EncDecAttention.o."},
      {std::regex(R"(\.encoder_attn_layer_norm\.)"), ".layer.1.layer_norm."},
  };
  std::string s = name;
  for (const auto& [re, replacement] : renames) s = std::regex_replace(s, re, replacement);
  // The feed-forward sublayer is layer.1 in the encoder, layer.2 in the decoder.
  const char* ffn = s.starts_with("encoder.") ? ".layer.1." : ".layer.2.";
  s = std::regex_replace(s, std::regex(R"(\.fc1\.)"), std::string(ffn) + "DenseReluDense.wi.");
  s = std::regex_replace(s, std::regex(R"(\.fc2\.)"), std::string(ffn) + "DenseReluDense.wo.");
  s = std::regex_replace(s, std::regex(R"((\.block\.\d+)\.final_layer_norm\.)"),
                         "$1" + std::string(ffn) + "layer_norm.");
  return {.name = s};
}

// Copies of the shared table (each stack's embed_tokens, the tied lm_head).
bool t5_ignored(const std::string& name) {
  return name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight" ||
         name == "lm_head.weight";
}

}  // namespace

extern const Family kT5Family = {"t5", t5_matches, t5_config, t5_placement, t5_ignored};

}  // namespace tfm
