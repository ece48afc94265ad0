// Hugging Face BERT for masked language modelling (model_type "bert"): an encoder-only post-LayerNorm
// stack; the embeddings are word + learned position + token type, then a LayerNorm; GELU (erf) in the
// feed-forward; the MLM head (cls.predictions) is a dense layer, the activation and a LayerNorm, then
// the word-embedding table (tied) plus a bias. The word table has padding_idx = pad_token_id.
#include <regex>

#include "models/family.h"
#include "models/family_util.h"

namespace tfm {

namespace {

bool bert_matches(const nlohmann::json& j) { return j.value("model_type", "") == "bert"; }

ModelConfig bert_config(const nlohmann::json& j) {
  HfConfig hf(j);
  std::string positions = hf.get<std::string>("position_embedding_type", "absolute");
  if (positions != "absolute") fail("config.json: position_embedding_type '{}' is not supported", positions);
  if (hf.get<bool>("is_decoder", false)) fail("config.json: is_decoder BERT is not supported");
  ModelConfig c;
  read_stack(hf, {"hidden_size", "num_attention_heads", "num_hidden_layers"}, Arch::EncoderOnly, c);
  c.d_ff = hf.need<int64_t>("intermediate_size");
  c.max_len = hf.need<int64_t>("max_position_embeddings");
  c.dropout = hf.get<float>("hidden_dropout_prob", 0.1f);
  c.attention_dropout = hf.get<float>("attention_probs_dropout_prob", 0.1f);
  c.activation_dropout = 0.0f;
  set_layer_norm(hf, "layer_norm_eps", 1e-12f, NormPosition::Post, /*final_norm=*/false, c);
  c.embedding_norm = true;
  c.positions = PositionKind::Learned;
  c.activation = read_activation(hf, "hidden_act", "gelu");
  c.attention_bias = c.ffn_bias = true;
  c.lm_head_transform = true;
  c.tie_output = hf.get<bool>("tie_word_embeddings", true);
  c.output_bias = true;
  c.token_types = hf.get<int64_t>("type_vocab_size", 2);
  c.pad_id = hf.get<int64_t>("pad_token_id", 0);
  c.freeze_pad_embedding = true;  // nn.Embedding(vocab, hidden, padding_idx=pad_token_id)
  c.additive_mask = true;
  c.validate();
  return c;
}

Placement bert_placement(const std::string& name, const ModelConfig&) {
  static const std::pair<std::regex, const char*> renames[] = {
      {std::regex(R"(^encoder\.embed_tokens\.)"), "bert.embeddings.word_embeddings."},
      {std::regex(R"(^encoder\.embed_positions\.)"), "bert.embeddings.position_embeddings."},
      {std::regex(R"(^encoder\.embed_token_types\.)"), "bert.embeddings.token_type_embeddings."},
      {std::regex(R"(^encoder\.layernorm_embedding\.)"), "bert.embeddings.LayerNorm."},
      {std::regex(R"(^encoder\.layers\.)"), "bert.encoder.layer."},
      {std::regex(R"(\.self_attn\.q_proj\.)"), ".attention.self.query."},
      {std::regex(R"(\.self_attn\.k_proj\.)"), ".attention.self.key."},
      {std::regex(R"(\.self_attn\.v_proj\.)"), ".attention.self.value."},
      {std::regex(R"(\.self_attn\.out_proj\.)"), ".attention.output.dense."},
      {std::regex(R"(\.self_attn_layer_norm\.)"), ".attention.output.LayerNorm."},
      {std::regex(R"(\.fc1\.)"), ".intermediate.dense."},
      {std::regex(R"(\.fc2\.)"), ".output.dense."},
      {std::regex(R"(\.final_layer_norm\.)"), ".output.LayerNorm."},
      {std::regex(R"(^lm_head\.transform\.dense\.)"), "cls.predictions.transform.dense."},
      {std::regex(R"(^lm_head\.transform\.layer_norm\.)"), "cls.predictions.transform.LayerNorm."},
      {std::regex(R"(^lm_head\.bias$)"), "cls.predictions.bias"},
      {std::regex(R"(^lm_head\.weight$)"), "cls.predictions.decoder.weight"},
  };
  std::string s = name;
  for (const auto& [re, replacement] : renames) s = std::regex_replace(s, re, replacement);
  return {.name = s};
}

// The tied decoder's copies (weight of the table, bias of cls.predictions.bias), the position_ids
// buffer, and the pre-training heads a MaskedLM does not use (pooler, next-sentence classifier).
bool bert_ignored(const std::string& name) {
  return name == "cls.predictions.decoder.weight" || name == "cls.predictions.decoder.bias" ||
         name == "bert.embeddings.position_ids" || name.starts_with("bert.pooler.") ||
         name.starts_with("cls.seq_relationship.");
}

}  // namespace

extern const Family kBertFamily = {"bert", bert_matches, bert_config, bert_placement, bert_ignored};

}  // namespace tfm
