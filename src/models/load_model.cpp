#include "models/load_model.h"

#include <filesystem>

#include "core/error.h"
#include "io/checkpoint.h"

namespace tfm {

namespace fs = std::filesystem;

LoadedModel load_model(const std::string& path) {
  LoadedModel m;
  // A training run folder holds a config.json too (the training config), but no model.safetensors.
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "model.safetensors")) {
    Pretrained p = load_pretrained(path);
    m.model = std::move(p.model);
    m.src = m.tgt = std::move(p.tokenizer);
    m.family = p.family;
    m.weights_file = (fs::path(path) / "model.safetensors").string();
    return m;
  }
  std::string file = path;
  if (fs::is_directory(path)) file = (fs::path(path) / "checkpoint.safetensors").string();
  if (!fs::exists(file))
    fail("{}: no model here (expected a Hugging Face folder, a tfm run folder or a checkpoint file)", path);
  const io::CheckpointInfo info = io::read_checkpoint_info(file);
  m.model = std::make_unique<Transformer>(model_config_from_json(info.model_config, file));
  io::load_checkpoint_weights(file, m.model->parameters(), nullptr);
  TokenizerPair tokenizers = checkpoint_tokenizers(info, file);
  m.src = std::move(tokenizers.src);
  m.tgt = std::move(tokenizers.tgt);
  m.weights_file = file;
  if (!info.hf_family.empty()) m.family = find_family_named(info.hf_family);
  return m;
}

TokenizerPair checkpoint_tokenizers(const io::CheckpointInfo& info, const std::string& file) {
  TokenizerPair t;
  t.src = tokenize::load_tokenizer_json(info.src_tokenizer, file + " (source tokenizer)");
  t.tgt = info.tgt_tokenizer == info.src_tokenizer
              ? t.src
              : tokenize::load_tokenizer_json(info.tgt_tokenizer, file + " (target tokenizer)");
  return t;
}

io::CheckpointInfo checkpoint_info(const Transformer& model, const tokenize::Tokenizer& src,
                                   const tokenize::Tokenizer& tgt, const Family* family) {
  io::CheckpointInfo info;
  info.model_config = to_json(model.config());
  info.src_tokenizer = src.to_json();
  info.tgt_tokenizer = &tgt == &src ? info.src_tokenizer : tgt.to_json();
  if (family) info.hf_family = family->name;
  return info;
}

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::EncoderDecoder:
      return "encoder-decoder";
    case Arch::DecoderOnly:
      return "decoder-only";
    case Arch::EncoderOnly:
      return "encoder-only";
  }
  return "?";
}

}  // namespace tfm
