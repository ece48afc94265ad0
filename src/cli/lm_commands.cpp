#include "cli/lm_commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/line_reader.h"
#include "infer/lm_perplexity.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/export_hf.h"
#include "models/load_model.h"
#include "models/lora_merge.h"
#include "models/quantize.h"

namespace tfm::cli {

namespace {

LoadedModel load_language_model(const std::string& path) {
  LoadedModel m = load_model(path);
  if (m.model->config().arch != Arch::DecoderOnly)
    fail("{}: a {} model is not a decoder-only language model", path, arch_name(m.model->config().arch));
  if (!m.tgt) fail("{}: no tokenizer.json", path);
  return m;
}

// Writes the part of `text` not yet written. A text ending in U+FFFD may be a character whose bytes
// are split across tokens: it waits for the next token (as HF's TextStreamer waits for whole words).
class TextDelta {
 public:
  void update(const std::string& text, bool final) {
    if (!final && text.ends_with("\xEF\xBF\xBD")) return;
    // Byte-level BPE decoding of a longer prefix extends the shorter one; if it ever did not, only
    // the new tail past the common part can be written.
    size_t common = 0;
    while (common < written_.size() && common < text.size() && written_[common] == text[common]) ++common;
    if (text.size() > common) std::fwrite(text.data() + common, 1, text.size() - common, stdout);
    std::fflush(stdout);
    written_ = text;
  }

 private:
  std::string written_;
};

const char* position_name(PositionKind p) {
  switch (p) {
    case PositionKind::SinusoidalInterleaved:
      return "sinusoidal (interleaved)";
    case PositionKind::SinusoidalHalf:
      return "sinusoidal (half-split)";
    case PositionKind::Learned:
      return "learned";
    case PositionKind::RoPE:
      return "rope";
    case PositionKind::ALiBi:
      return "alibi";
    case PositionKind::T5Relative:
      return "t5 relative buckets";
  }
  return "?";
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::ReLU:
      return "relu";
    case Activation::GeluErf:
      return "gelu (erf)";
    case Activation::GeluTanh:
      return "gelu (tanh)";
    case Activation::SwiGLU:
      return "swiglu";
  }
  return "?";
}

const char* norm_name(NormType n) {
  switch (n) {
    case NormType::LayerNorm:
      return "layernorm";
    case NormType::SeedLayerNorm:
      return "seed layernorm";
    case NormType::RMSNorm:
      return "rmsnorm";
  }
  return "?";
}

}  // namespace

int cmd_generate(GenerateCommandOptions options) {
  LoadedModel p = load_language_model(options.model_dir);
  const tokenize::Tokenizer& tok = *p.tgt;
  std::vector<int32_t> ids = tok.encode(options.prompt);
  if (ids.empty()) fail("the prompt '{}' encodes to no tokens", options.prompt);
  options.generate.rules.eos_id = p.model->config().eos_id;
  TextDelta out;
  out.update(tok.decode(ids), false);
  const std::vector<int64_t> prompt(ids.begin(), ids.end());
  infer::generate(*p.model, {prompt}, options.generate, [&](int64_t, int64_t token) {
    ids.push_back(int32_t(token));
    out.update(tok.decode(ids), false);
  });
  out.update(tok.decode(ids), true);
  std::fputc('\n', stdout);
  return 0;
}

int cmd_perplexity(const std::string& model_dir, const std::string& file, int64_t context, int64_t stride,
                   bool extrapolate) {
  LoadedModel p = load_language_model(model_dir);
  if (extrapolate) with_context(model_dir, [&] { p.model->extend_positions(context); });
  if (context > p.model->config().max_len)
    fail("{}: a context of {} is past the model's {} positions (--extrapolate evaluates beyond them)",
         model_dir, context, p.model->config().max_len);
  // Each line ends with GPT-2's <|endoftext|> when the tokenizer has it, else with the model's EOS.
  const int64_t eot = p.tgt->token_to_id("<|endoftext|>").value_or(int32_t(p.model->config().eos_id));
  data::LineReader reader(file);
  std::vector<std::string> lines;
  for (std::string line; reader.next(line);) lines.push_back(line);
  const std::vector<int64_t> stream = infer::text_stream(*p.tgt, lines, eot);
  const metrics::PerplexityAccumulator acc = infer::lm_perplexity(*p.model, stream, context, stride);
  std::printf("%s\n",
              nlohmann::json{{"perplexity", acc.perplexity()}, {"tokens", acc.tokens}}.dump().c_str());
  return 0;
}

int cmd_inspect(const std::string& model_dir) {
  LoadedModel p = load_model(model_dir);
  const ModelConfig& c = p.model->config();
  std::string layers;
  if (c.arch != Arch::DecoderOnly) layers += fmt::format("{} encoder", c.encoder_layers);
  if (c.arch != Arch::EncoderOnly)
    layers += fmt::format("{}{} decoder", layers.empty() ? "" : " + ", c.decoder_layers);
  std::printf("format        %s\n", p.family
                                        ? fmt::format("Hugging Face, model_type {}", p.family->name).c_str()
                                        : "tfm checkpoint");
  std::printf("architecture  %s\n", arch_name(c.arch));
  std::printf("layers        %s\n", layers.c_str());
  std::printf("d_model       %lld\n", static_cast<long long>(c.d_model));
  std::printf("heads         %d (key/value heads %d, head dim %lld)\n", c.heads, c.key_value_heads(),
              static_cast<long long>(c.attention_head_dim()));
  std::string attention = c.attention == AttentionKind::Linear ? "linear (elu + 1)" : "softmax";
  if (c.sliding_window > 0) attention += fmt::format(", sliding window {}", c.sliding_window);
  if (c.global_tokens > 0) attention += fmt::format(", {} global tokens", c.global_tokens);
  std::printf("attention     %s\n", attention.c_str());
  std::printf("ffn           %lld, %s%s\n", static_cast<long long>(c.d_ff), activation_name(c.activation),
              c.experts > 0 ? fmt::format(", {} experts (top {})", c.experts, c.experts_top_k).c_str() : "");
  std::printf("norm          %s, %s-norm\n", norm_name(c.norm),
              c.norm_position == NormPosition::Pre ? "pre" : "post");
  std::printf("positions     %s, max length %lld\n", position_name(c.positions),
              static_cast<long long>(c.max_len));
  std::printf("vocabulary    %lld\n", static_cast<long long>(c.tgt_vocab));
  std::printf("parameters    %lld (tied tensors counted once)\n",
              static_cast<long long>(p.model->parameters().numel()));
  const io::SafetensorsFile st = io::SafetensorsFile::open(p.weights_file);
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> tensors, elements
  for (const std::string& name : st.names()) {
    const io::TensorInfo& info = st.info(name);
    auto& [tensors, elements] = by_dtype[std::string(dtype_name(info.dtype))];
    ++tensors, elements += info.shape.numel();
  }
  for (const auto& [dtype, counts] : by_dtype)
    std::printf("file dtype    %s: %lld tensors, %lld elements\n", dtype.c_str(),
                static_cast<long long>(counts.first), static_cast<long long>(counts.second));
  return 0;
}

int cmd_export(const std::string& model_path, const std::string& out_dir, const std::string& layout) {
  LoadedModel m = load_model(model_path);
  if (!m.tgt) fail("{}: no tokenizer to export", model_path);
  if (m.src != m.tgt && m.src->to_json() != m.tgt->to_json())
    fail("{}: the source and target tokenizers differ; a Hugging Face folder holds one tokenizer.json",
         model_path);
  const std::string model_type = export_hf(*m.model, *m.tgt, out_dir, layout);
  std::printf("wrote %s: config.json (model_type %s), model.safetensors, tokenizer.json\n", out_dir.c_str(),
              model_type.c_str());
  return 0;
}

int cmd_quantize(const std::string& model_path, const std::string& type, const std::string& out_dir) {
  LoadedModel m = load_model(model_path);
  if (!m.src) fail("{}: no tokenizer", model_path);
  quantize_model(*m.model, kernels::format_named(type));
  const io::CheckpointInfo info = checkpoint_info(*m.model, *m.src, *m.tgt, m.family);
  std::filesystem::create_directories(out_dir);
  const std::string file = (std::filesystem::path(out_dir) / "checkpoint.safetensors").string();
  io::save_checkpoint(file, m.model->parameters(), nullptr, info);
  const kernels::WeightFormat format = kernels::format_named(type);
  std::printf("wrote %s: %zu projection weights as %s, the output layer as %s, %.1f MB\n", file.c_str(),
              m.model->projection_weights().size(), kernels::format_name(format),
              kernels::format_name(output_format(format)), double(std::filesystem::file_size(file)) / 1e6);
  return 0;
}

int cmd_lora_merge(const std::string& model_path, const std::string& out_dir) {
  LoadedModel m = load_model(model_path);
  if (!m.src) fail("{}: no tokenizer", model_path);
  const size_t adapters = m.model->lora_adapters().size();
  std::unique_ptr<Transformer> merged = merge_lora(*m.model);
  const io::CheckpointInfo info = checkpoint_info(*merged, *m.src, *m.tgt, m.family);
  std::filesystem::create_directories(out_dir);
  const std::string file = (std::filesystem::path(out_dir) / "checkpoint.safetensors").string();
  io::save_checkpoint(file, merged->parameters(), nullptr, info);
  std::printf("wrote %s: %zu adapters merged into their weights (%s)\n", file.c_str(), adapters,
              m.model->config().lora.c_str());
  return 0;
}

int cmd_lora_export(const std::string& model_path, const std::string& family, const std::string& base_model,
                    const std::string& out_dir) {
  LoadedModel m = load_model(model_path);
  const std::string layout = !family.empty() ? family : m.family ? m.family->name : "";
  save_peft_adapters(*m.model, layout, base_model, out_dir);
  std::printf("wrote %s/adapter_config.json and adapter_model.safetensors (%zu adapters, %s names)\n",
              out_dir.c_str(), m.model->lora_adapters().size(), layout.empty() ? "tfm" : layout.c_str());
  return 0;
}

}  // namespace tfm::cli
