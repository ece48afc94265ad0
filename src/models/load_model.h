// Any model tfm runs, from one path: a Hugging Face folder (config.json + model.safetensors, with its
// tokenizer.json), a tfm training run folder (checkpoint.safetensors) or a tfm checkpoint file. The CLI's
// translate, generate, perplexity and inspect, and training's init_from, all load through here.
#pragma once

#include <memory>
#include <string>

#include "io/checkpoint.h"
#include "models/family.h"
#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace tfm {

struct LoadedModel {
  std::unique_ptr<Transformer> model;
  // Source and target tokenizers (the same object when shared; null when a Hugging Face folder has no
  // tokenizer.json).
  std::shared_ptr<const tokenize::Tokenizer> src, tgt;
  // The Hugging Face family (also for a tfm checkpoint made from a HF folder, e.g. by `tfm quantize`);
  // null for a model tfm trained.
  const Family* family = nullptr;
  std::string weights_file;  // model.safetensors or the checkpoint
};

// Errors name the path: neither kind of model there, a malformed config or checkpoint, missing or
// unexpected weights.
LoadedModel load_model(const std::string& path);

struct TokenizerPair {
  std::shared_ptr<const tokenize::Tokenizer> src,
      tgt;  // one object when the checkpoint stores one text twice
};
// The source and target tokenizers stored in a checkpoint's metadata (`file` names it in errors).
TokenizerPair checkpoint_tokenizers(const io::CheckpointInfo& info, const std::string& file);

// What a checkpoint of `model` records besides its weights: its config, its tokenizers (one JSON text twice
// when shared) and its Hugging Face family (null: none); state and training config are the caller's.
io::CheckpointInfo checkpoint_info(const Transformer& model, const tokenize::Tokenizer& src,
                                   const tokenize::Tokenizer& tgt, const Family* family = nullptr);

// "decoder-only", ... (as train's model.arch spells them).
const char* arch_name(Arch arch);

}  // namespace tfm
