// Sentence-level translation with an encoder-decoder model and its two tokenizers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace tfm::infer {

struct TranslateOptions {
  int64_t batch_size = 32;       // sentences decoded together (sorted by length first)
  int64_t max_new_tokens = 256;  // capped by the model's max_len
  // Wrap each source in the model's bos and eos ids (the seed). Off when the tokenizer's
  // post-processor already ends sources with EOS (Hugging Face folders: Marian's "$A </s>").
  bool add_bos_eos = true;
};

struct TranslateStats {
  int64_t sentences = 0;
  int64_t truncated = 0;  // sources longer than the model's maximum, cut to fit
  int64_t generated_tokens = 0;
};

// One translation per sentence, in input order. An empty sentence translates to an empty line.
std::vector<std::string> translate(const Transformer& model, const tokenize::Tokenizer& src,
                                   const tokenize::Tokenizer& tgt, const std::vector<std::string>& sentences,
                                   const TranslateOptions& options, TranslateStats* stats = nullptr);

// A trained model with its tokenizers, as a checkpoint holds them.
struct TranslationModel {
  std::unique_ptr<Transformer> model;
  std::unique_ptr<tokenize::Tokenizer> src, tgt;
  bool tokenizer_frames_source = false;  // see TranslateOptions::add_bos_eos
};

// `path`: a checkpoint file, a run folder holding checkpoint.safetensors, or a Hugging Face
// encoder-decoder folder (config.json, model.safetensors, tokenizer.json for both sides), recognised by
// its model.safetensors.
TranslationModel load_translation_model(const std::string& path);

}  // namespace tfm::infer
