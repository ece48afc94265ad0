#include "models/export_hf.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/family.h"

namespace tfm {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Collects every way the model departs from a layout, to name them all in one error.
class Requirements {
 public:
  explicit Requirements(std::string layout) : layout_(std::move(layout)) {}
  void need(bool ok, const std::string& what) {
    if (!ok) missing_.push_back(what);
  }
  void check() const {
    if (missing_.empty()) return;
    std::string list;
    for (const std::string& m : missing_) list += (list.empty() ? "" : "; ") + m;
    fail("the model cannot be written in the {} layout: {}", layout_, list);
  }

 private:
  std::string layout_;
  std::vector<std::string> missing_;
};

const char* activation_function(Activation a) {
  switch (a) {
    case Activation::ReLU:
      return "relu";
    case Activation::GeluErf:
      return "gelu";
    case Activation::GeluTanh:
      return "gelu_new";
    case Activation::SwiGLU:
      return "silu";
  }
  return "?";
}

void common_requirements(const ModelConfig& c, Requirements& r) {
  r.need(c.experts == 0, "mixture-of-experts layers");
  r.need(c.token_types == 0, "token-type embeddings");
  r.need(!c.embedding_norm, "a norm after the embeddings");
  r.need(!c.lm_head_transform, "an LM-head transform");
  r.need(c.scale_attention, "unscaled attention");
  r.need(c.output_scale == 1.0f, "an output scale");
  r.need(c.head_dim == 0 || c.head_dim == c.d_model / c.heads, "a head width other than d_model / heads");
}

Json marian_config(const ModelConfig& c) {
  Requirements r("Marian");
  common_requirements(c, r);
  r.need(c.arch == Arch::EncoderDecoder, "Marian is an encoder-decoder");
  r.need(c.norm == NormType::LayerNorm && c.norm_eps == 1e-5f,
         "Marian normalises with torch.nn.LayerNorm, eps 1e-5 (model.norm = \"layernorm\", norm_eps = 1e-5)");
  r.need(c.norm_position == NormPosition::Post && !c.final_norm, "Marian is post-norm (model.norm_position)");
  r.need(
      c.positions == PositionKind::SinusoidalHalf,
      "Marian's positions are sinusoidal in its half-split layout (model.positions = \"sinusoidal_half\")");
  r.need(c.activation != Activation::SwiGLU, "Marian has no gated feed-forward");
  r.need(c.key_value_heads() == c.heads, "grouped-query attention");
  r.need(c.sliding_window == 0, "sliding-window attention");
  r.need(c.src_vocab == c.tgt_vocab, "one vocabulary for both languages");
  r.need(c.embedding_scale == 1.0f || std::abs(c.embedding_scale - std::sqrt(float(c.d_model))) < 1e-6f,
         "an embedding scale other than 1 or sqrt(d_model)");
  r.check();
  return {{"model_type", "marian"},
          {"architectures", {"MarianMTModel"}},
          {"is_encoder_decoder", true},
          {"vocab_size", c.src_vocab},
          {"decoder_vocab_size", c.tgt_vocab},
          {"d_model", c.d_model},
          {"encoder_attention_heads", c.heads},
          {"decoder_attention_heads", c.heads},
          {"encoder_ffn_dim", c.d_ff},
          {"decoder_ffn_dim", c.d_ff},
          {"encoder_layers", c.encoder_layers},
          {"decoder_layers", c.decoder_layers},
          {"max_position_embeddings", c.max_len},
          {"dropout", c.dropout},
          {"attention_dropout", c.attention_dropout},
          {"activation_dropout", c.activation_dropout},
          {"activation_function", activation_function(c.activation)},
          {"scale_embedding", c.embedding_scale != 1.0f},
          {"share_encoder_decoder_embeddings", c.share_embeddings},
          {"tie_word_embeddings", c.tie_output},
          {"pad_token_id", c.pad_id},
          {"eos_token_id", c.eos_id},
          {"decoder_start_token_id", c.bos_id}};
}

Json gpt2_config(const ModelConfig& c) {
  Requirements r("GPT-2");
  common_requirements(c, r);
  r.need(c.arch == Arch::DecoderOnly, "GPT-2 is decoder-only");
  r.need(c.norm == NormType::LayerNorm,
         "GPT-2 normalises with torch.nn.LayerNorm (model.norm = \"layernorm\")");
  r.need(c.norm_position == NormPosition::Pre && c.final_norm, "GPT-2 is pre-norm with a final norm");
  r.need(c.positions == PositionKind::Learned,
         "GPT-2's positions are learned (model.positions = \"learned\")");
  r.need(c.activation != Activation::SwiGLU, "GPT-2 has no gated feed-forward");
  r.need(c.key_value_heads() == c.heads, "grouped-query attention");
  r.need(c.sliding_window == 0, "sliding-window attention");
  r.need(c.embedding_scale == 1.0f, "GPT-2 does not scale its embeddings (model.scale_embeddings = false)");
  r.need(c.tie_output, "GPT-2 ties its output layer to the embeddings (model.tie_embeddings = true)");
  r.check();
  return {{"model_type", "gpt2"},
          {"architectures", {"GPT2LMHeadModel"}},
          {"vocab_size", c.tgt_vocab},
          {"n_positions", c.max_len},
          {"n_embd", c.d_model},
          {"n_layer", c.decoder_layers},
          {"n_head", c.heads},
          {"n_inner", c.d_ff},
          {"activation_function", activation_function(c.activation)},
          {"layer_norm_epsilon", c.norm_eps},
          {"resid_pdrop", c.dropout},
          {"embd_pdrop", c.dropout},
          {"attn_pdrop", c.attention_dropout},
          {"scale_attn_weights", true},
          {"tie_word_embeddings", true},
          {"bos_token_id", c.bos_id},
          {"eos_token_id", c.eos_id},
          {"pad_token_id", c.pad_id}};
}

Json llama_config(const ModelConfig& c) {
  Requirements r("Llama");
  common_requirements(c, r);
  r.need(c.arch == Arch::DecoderOnly, "Llama is decoder-only");
  r.need(c.norm == NormType::RMSNorm, "Llama normalises with RMSNorm (model.norm = \"rmsnorm\")");
  r.need(c.norm_position == NormPosition::Pre && c.final_norm, "Llama is pre-norm with a final norm");
  r.need(c.positions == PositionKind::RoPE, "Llama's positions are rotary (model.positions = \"rope\")");
  r.need(c.activation == Activation::SwiGLU,
         "Llama's feed-forward is SwiGLU (model.activation = \"swiglu\")");
  r.need(c.embedding_scale == 1.0f, "Llama does not scale its embeddings (model.scale_embeddings = false)");
  r.check();
  Json j = {{"model_type", c.sliding_window > 0 ? "mistral" : "llama"},
            {"architectures", {c.sliding_window > 0 ? "MistralForCausalLM" : "LlamaForCausalLM"}},
            {"vocab_size", c.tgt_vocab},
            {"hidden_size", c.d_model},
            {"intermediate_size", c.d_ff},
            {"num_hidden_layers", c.decoder_layers},
            {"num_attention_heads", c.heads},
            {"num_key_value_heads", c.key_value_heads()},
            {"head_dim", c.attention_head_dim()},
            {"max_position_embeddings", c.max_len},
            {"rms_norm_eps", c.norm_eps},
            {"rope_theta", c.rope_theta},
            {"hidden_act", "silu"},
            {"attention_bias", c.attention_bias},
            {"mlp_bias", c.ffn_bias},
            {"attention_dropout", c.attention_dropout},
            {"tie_word_embeddings", c.tie_output},
            {"bos_token_id", c.bos_id},
            {"eos_token_id", c.eos_id},
            {"pad_token_id", c.pad_id}};
  if (c.sliding_window > 0) j["sliding_window"] = c.sliding_window;
  return j;
}

bool is_bias(const std::string& name) { return name.ends_with(".bias") || name == "final_logits_bias"; }

bool all_zero(const Tensor& t) {
  const float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (p[i] != 0.0f) return false;
  return true;
}

// `target`'s parameters from `source` (same names; the trained output bias becomes Marian's
// final_logits_bias). Biases `source` lacks are zeros; a non-zero parameter `target` cannot hold is an
// error.
void copy_parameters(const Transformer& source, Transformer& target) {
  const ParameterStore& from = const_cast<Transformer&>(source).parameters();
  ParameterStore& to = target.parameters();
  std::vector<std::string> problems;
  for (Parameter* p : to.list()) {
    std::string name = p->name;
    if (name == "final_logits_bias" && !from.find(name)) name = "lm_head.bias";
    const Parameter* q = from.find(name);
    if (!q) {
      if (!is_bias(p->name)) problems.push_back("no " + p->name);
      p->value.zero_();
      continue;
    }
    if (q->shape() != p->value.shape()) {
      problems.push_back(
          fmt::format("{} is {}, the layout needs {}", name, q->shape().str(), p->value.shape().str()));
      continue;
    }
    p->value.copy_(q->float_value());
  }
  for (const Parameter* q : const_cast<ParameterStore&>(from).list()) {
    const bool used = to.find(q->name) || (q->name == "lm_head.bias" && to.find("final_logits_bias"));
    if (!used && !all_zero(q->float_value())) problems.push_back(q->name + " has no place in the layout");
  }
  if (!problems.empty()) {
    std::string list;
    for (const std::string& m : problems) list += (list.empty() ? "" : "; ") + m;
    fail("the model's parameters do not fit the layout: {}", list);
  }
}

// tokenizer.json with a TemplateProcessing post-processor that frames a sentence as <bos> A <eos>.
std::string framed_tokenizer_json(const tokenize::Tokenizer& tokenizer) {
  Json j = Json::parse(tokenizer.to_json());
  const auto bos = tokenizer.id_to_token(tokenizer.bos_id()), eos = tokenizer.id_to_token(tokenizer.eos_id());
  if (!bos || !eos) fail("the tokenizer has no start and end tokens to frame source sentences with");
  auto special = [](const std::string& token) {
    return Json{{"SpecialToken", {{"id", token}, {"type_id", 0}}}};
  };
  auto sequence = [](const char* id) { return Json{{"Sequence", {{"id", id}, {"type_id", 0}}}}; };
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {special(*bos), sequence("A"), special(*eos)}},
      {"pair", {special(*bos), sequence("A"), special(*eos), sequence("B"), special(*eos)}},
      {"special_tokens",
       {{*bos, {{"id", *bos}, {"ids", {tokenizer.bos_id()}}, {"tokens", {*bos}}}},
        {*eos, {{"id", *eos}, {"ids", {tokenizer.eos_id()}}, {"tokens", {*eos}}}}}}};
  return j.dump(2);
}

}  // namespace

std::string export_hf(const Transformer& model, const tokenize::Tokenizer& tokenizer,
                      const std::string& out_dir, const std::string& layout) {
  const ModelConfig& c = model.config();
  std::string chosen = layout;
  if (chosen == "auto") {
    if (c.arch == Arch::EncoderDecoder)
      chosen = "marian";
    else if (c.arch == Arch::DecoderOnly && c.norm == NormType::RMSNorm)
      chosen = "llama";
    else if (c.arch == Arch::DecoderOnly)
      chosen = "gpt2";
    else
      fail("no Hugging Face layout for an encoder-only model yet (marian, gpt2, llama)");
  }
  Json config;
  if (chosen == "marian")
    config = marian_config(c);
  else if (chosen == "gpt2")
    config = gpt2_config(c);
  else if (chosen == "llama")
    config = llama_config(c);
  else
    fail("unknown layout '{}' (auto, marian, gpt2, llama)", layout);
  if (tokenizer.vocab_size() != c.tgt_vocab)
    fail("the tokenizer has {} tokens, the model {}", tokenizer.vocab_size(), c.tgt_vocab);

  const Family* family = find_family(config);
  Transformer target(family->config(config));
  copy_parameters(model, target);
  fs::create_directories(out_dir);
  const fs::path dir(out_dir);
  io::save_safetensors((dir / "model.safetensors").string(), checkpoint_tensors(target, *family, false));
  io::write_file_atomic((dir / "config.json").string(), config.dump(2) + "\n");
  io::write_file_atomic((dir / "tokenizer.json").string(),
                        chosen == "marian" ? framed_tokenizer_json(tokenizer) : tokenizer.to_json());
  return config["model_type"].get<std::string>();
}

}  // namespace tfm
