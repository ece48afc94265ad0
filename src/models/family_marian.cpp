// Hugging Face MarianMT (model_type "marian"): the original post-norm Transformer. HF's MarianConfig
// and modeling_marian: sinusoidal positions with sin in the first half of the vector and cos in the
// second, embeddings scaled by sqrt(d_model) (scale_embedding), LayerNorm (eps 1e-5) after each
// residual, no final norm, biases everywhere, a `final_logits_bias` buffer added to the logits, the
// decoder starting from decoder_start_token_id (the pad token), and at generation the pad token never
// generated and EOS forced at the length limit (forced_eos_token_id).
#include <cmath>

#include "models/family.h"
#include "models/family_util.h"

namespace tfm {

namespace {

bool marian_matches(const nlohmann::json& j) { return j.value("model_type", "") == "marian"; }

ModelConfig marian_config(const nlohmann::json& j) {
  HfConfig hf(j);
  ModelConfig c;
  c.arch = Arch::EncoderDecoder;
  c.src_vocab = hf.need<int64_t>("vocab_size");
  c.tgt_vocab = hf.get<int64_t>("decoder_vocab_size", c.src_vocab);
  c.d_model = hf.need<int64_t>("d_model");
  c.heads = hf.need<int>("encoder_attention_heads");
  if (hf.need<int>("decoder_attention_heads") != c.heads)
    fail("config.json: encoder_attention_heads and decoder_attention_heads differ; tfm needs them equal");
  c.d_ff = hf.need<int64_t>("encoder_ffn_dim");
  if (hf.need<int64_t>("decoder_ffn_dim") != c.d_ff)
    fail("config.json: encoder_ffn_dim and decoder_ffn_dim differ; tfm needs them equal");
  c.encoder_layers = hf.need<int>("encoder_layers");
  c.decoder_layers = hf.need<int>("decoder_layers");
  c.max_len = hf.need<int64_t>("max_position_embeddings");
  c.dropout = hf.get<float>("dropout", 0.1f);
  c.attention_dropout = hf.get<float>("attention_dropout", 0.0f);
  c.activation_dropout = hf.get<float>("activation_dropout", 0.0f);
  c.norm = NormType::LayerNorm;
  c.norm_eps = 1e-5f;  // torch.nn.LayerNorm's default, which Marian uses
  c.norm_position = NormPosition::Post;
  c.final_norm = false;
  c.positions = PositionKind::SinusoidalHalf;
  c.activation = read_activation(hf, "activation_function");
  c.attention_bias = c.ffn_bias = true;
  c.output_bias = false;
  c.final_logits_bias = true;
  c.embedding_scale = hf.get<bool>("scale_embedding", false) ? std::sqrt(float(c.d_model)) : 1.0f;
  c.share_embeddings = hf.get<bool>("share_encoder_decoder_embeddings", true);
  c.tie_output = hf.get<bool>("tie_word_embeddings", true);
  c.pad_id = hf.need<int64_t>("pad_token_id");
  c.bos_id = hf.need<int64_t>("decoder_start_token_id");
  c.eos_id = hf.need<int64_t>("eos_token_id");
  c.freeze_pad_embedding = true;   // nn.Embedding(vocab, d, padding_idx=pad_token_id)
  c.mask_decoder_padding = false;  // HF masks the decoder causally only (its start token is the pad)
  c.additive_mask = true;
  c.forbid_pad = true;
  read_forced_eos(hf, c);
  c.validate();
  return c;
}

// tfm's names are BART/Marian's, under "model." (lm_head and final_logits_bias at the top).
Placement marian_placement(const std::string& name, const ModelConfig&) {
  if (name == "lm_head.weight" || name == "final_logits_bias") return {.name = name};
  return {.name = "model." + name};
}

// Copies of the shared table (when shared and tied) and the position tables HF may save.
bool marian_ignored(const std::string& name) {
  return name == "model.encoder.embed_tokens.weight" || name == "model.decoder.embed_tokens.weight" ||
         name == "lm_head.weight" || name == "model.encoder.embed_positions.weight" ||
         name == "model.decoder.embed_positions.weight";
}

}  // namespace

extern const Family kMarianFamily = {"marian", marian_matches, marian_config, marian_placement,
                                     marian_ignored};

}  // namespace tfm
