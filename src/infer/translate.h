// Sentence-level translation with an encoder-decoder model and its two tokenizers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "infer/beam_search.h"
#include "infer/decoder_step.h"
#include "infer/logits_processors.h"
#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace tfm::infer {

// Decoding follows the model's rules as Hugging Face's generate does for its family: the decoder starts
// from bos_id, pad is never generated when forbid_pad (Marian), EOS is forced at the length limit when
// forced_eos (Marian's forced_eos_token_id).
struct TranslateOptions {
  int64_t batch_size = 32;       // sentences decoded together (sorted by length first)
  int64_t max_new_tokens = 256;  // as generation_config.json's; capped by the model's max_len
  int64_t beams = 1;             // 1: greedy; more: beam search with length_penalty 1
  // mt-en-es's test.beam4.es was generated with HF early_stopping=True: 615 of 617 lines agree with it,
  // 575 with HF's documented default (False, the heuristic), whose translations come out longer.
  EarlyStopping early_stopping = EarlyStopping::kWhenFull;
  // Wrap each source in the model's bos and eos ids (the seed). Off when the tokenizer's
  // post-processor already ends sources with EOS (Hugging Face folders: Marian's "$A </s>").
  bool add_bos_eos = true;
};

struct TranslateStats {
  int64_t sentences = 0;
  int64_t truncated = 0;         // sources longer than the model's maximum, cut to fit
  int64_t generated_tokens = 0;  // tokens the decoder produced (EOS included), over all sentences
};

// The decoding rules of the model's family (see TranslateOptions) for at most max_new_tokens tokens.
GenerationRules translation_rules(const ModelConfig& config, int64_t max_new_tokens);

// The source ids of `sentence`: tokenized, wrapped in bos and eos when add_bos_eos, cut to the model's
// max_len (keeping the final EOS; *truncated says whether it was cut).
std::vector<int64_t> translation_source(const ModelConfig& config, const tokenize::Tokenizer& src,
                                        const std::string& sentence, bool add_bos_eos, bool* truncated = nullptr);

// The search `options` choose (greedy, or beam search) over `sources` rows of `decoder`, each started from
// bos_id: per source up to `hypotheses` generated token lists, best first (greedy finds one).
std::vector<std::vector<std::vector<int64_t>>> translation_search(DecoderStep& decoder, const ModelConfig& config,
                                                                  size_t sources, const GenerationRules& rules,
                                                                  const TranslateOptions& options,
                                                                  int64_t hypotheses);

// The text of generated tokens: up to the first EOS, special tokens skipped.
std::string translation_text(const ModelConfig& config, const tokenize::Tokenizer& tgt,
                             std::span<const int64_t> generated);

// One translation per sentence, in input order. An empty sentence translates to an empty line.
std::vector<std::string> translate(const Transformer& model, const tokenize::Tokenizer& src,
                                   const tokenize::Tokenizer& tgt, const std::vector<std::string>& sentences,
                                   const TranslateOptions& options, TranslateStats* stats = nullptr);

// A trained model with its tokenizers, as a checkpoint holds them.
struct TranslationModel {
  std::unique_ptr<Transformer> model;
  std::shared_ptr<const tokenize::Tokenizer> src, tgt;
  bool tokenizer_frames_source = false;  // see TranslateOptions::add_bos_eos
};

// `path`: a checkpoint file, a run folder holding checkpoint.safetensors, or a Hugging Face
// encoder-decoder folder (config.json, model.safetensors, tokenizer.json for both sides), recognised by
// its model.safetensors.
TranslationModel load_translation_model(const std::string& path);

}  // namespace tfm::infer
