// The tokenizers a training run uses: trained on its corpus at the first run (byte-level BPE shared by both
// languages, or the seed's word-level vocabulary per language), or a ready-made one from a file.
//
// A trained BPE tokenizer is cached in the run folder beside the token files: tokenizer.json (loadable by
// Hugging Face tokenizers) and tokenizer.source.json, which records the corpus's identity (path, size,
// modification time) and the training settings. A later run into the same folder reuses it while both match
// and retrains it otherwise. A resumed run takes its tokenizers from the checkpoint instead.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "tokenize/tokenizer.h"
#include "train/config.h"

namespace tfm::train {

struct RunTokenizers {
  std::shared_ptr<const tokenize::Tokenizer> src, tgt;  // the same object when shared
};

// The special tokens of a trained BPE tokenizer, with ids 0, 1, 2: padding, start and end of sequence
// (the end of every line of a text corpus). An encoder-only model's also has kMaskToken, id 3.
inline constexpr const char* kBpeSpecialTokens[] = {"<pad>", "<s>", "</s>"};
inline constexpr const char* kMaskToken = "<mask>";

// Builds the tokenizers that cfg.data asks for (one shared by both sides for a text corpus); `run_dir` holds
// the BPE cache. `say` reports what was done. Throws tfm::Error naming the corpus or the tokenizer file on
// bad input.
RunTokenizers prepare_tokenizers(const TrainConfig& cfg, const std::string& run_dir,
                                 const std::function<void(const std::string&)>& say);

}  // namespace tfm::train
