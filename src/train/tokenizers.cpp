#include "train/tokenizers.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "data/parallel_corpus.h"
#include "data/token_file.h"
#include "io/atomic_file.h"
#include "tokenize/bpe_trainer.h"
#include "tokenize/word_level.h"

namespace tfm::train {
namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool text_corpus(const TrainConfig& cfg) { return cfg.model.arch != "encoder-decoder"; }

// kBpeSpecialTokens, and <mask> (id 3) for a masked language model.
std::vector<std::string> bpe_special_tokens(const TrainConfig& cfg) {
  std::vector<std::string> tokens(std::begin(kBpeSpecialTokens), std::end(kBpeSpecialTokens));
  if (cfg.model.arch == "encoder-only") tokens.push_back(kMaskToken);
  return tokens;
}

// What a cached BPE tokenizer was trained from: equal records mean the same tokenizer.
nlohmann::json bpe_source_record(const TrainConfig& cfg) {
  const data::SourceIdentity corpus = data::source_identity(cfg.data.train);
  return {{"corpus", {{"path", corpus.path}, {"size", corpus.size}, {"mtime_ns", corpus.mtime_ns}}},
          {"vocab_size", cfg.data.vocab_size},
          {"min_frequency", cfg.data.min_freq},
          {"invalid_utf8", cfg.data.invalid_utf8},
          {"special_tokens", bpe_special_tokens(cfg)}};
}

// Calls visit(pair) for every pair of the training corpus, read as cfg.data says; `pair` may be moved from.
template <typename Visit>
void for_each_training_pair(const TrainConfig& cfg, Visit visit) {
  data::CorpusReader reader(cfg.data.train, corpus_options(cfg.data, cfg.model.arch));
  data::SentencePair pair;
  while (reader.next(pair)) visit(pair);
}

// Every line of a text corpus; both sides of every pair of a parallel one, source then target (one
// vocabulary for the two languages).
std::vector<std::string> training_text(const TrainConfig& cfg) {
  std::vector<std::string> lines;
  const bool text = text_corpus(cfg);
  for_each_training_pair(cfg, [&](data::SentencePair& pair) {
    lines.push_back(std::move(pair.src));
    if (!text) lines.push_back(std::move(pair.tgt));
  });
  return lines;
}

std::shared_ptr<const tokenize::Tokenizer> cached_or_trained_bpe(
    const TrainConfig& cfg, const std::string& run_dir, const std::function<void(const std::string&)>& say) {
  const std::string json_path = (fs::path(run_dir) / "tokenizer.json").string();
  const std::string record_path = (fs::path(run_dir) / "tokenizer.source.json").string();
  const nlohmann::json record = bpe_source_record(cfg);
  if (fs::exists(json_path) && fs::exists(record_path)) {
    const nlohmann::json cached = nlohmann::json::parse(io::read_file(record_path), nullptr, false);
    if (cached == record) {
      say(fmt::format("data: reusing the BPE tokenizer {}", json_path));
      return tokenize::load_tokenizer(json_path);
    }
  }
  const auto start = std::chrono::steady_clock::now();
  tokenize::BpeTrainOptions options;
  options.vocab_size = cfg.data.vocab_size;
  options.min_frequency = cfg.data.min_freq;
  options.special_tokens = bpe_special_tokens(cfg);
  auto bpe = std::make_shared<tokenize::BpeTokenizer>(tokenize::train_bpe(training_text(cfg), options));
  fs::create_directories(run_dir);
  io::write_file_atomic(json_path, bpe->to_json());
  io::write_file_atomic(record_path, record.dump(2) + "\n");
  say(fmt::format("data: trained a byte-level BPE tokenizer of {} tokens on {} in {:.2f} s, saved as {}",
                  bpe->vocab_size(), cfg.data.train, seconds_since(start), json_path));
  return bpe;
}

}  // namespace

RunTokenizers prepare_tokenizers(const TrainConfig& cfg, const std::string& run_dir,
                                 const std::function<void(const std::string&)>& say) {
  if (!cfg.data.tokenizer_file.empty()) {
    std::shared_ptr<const tokenize::Tokenizer> shared = tokenize::load_tokenizer(cfg.data.tokenizer_file);
    const tokenize::SpecialIds ids = shared->special_ids();
    if (ids.pad < 0 || ids.bos < 0 || ids.eos < 0)
      fail(
          "{}: training needs padding, start and end tokens (<pad>/[PAD], <s>/[SOS], </s>/[EOS]); this "
          "tokenizer has pad {}, start {}, end {}",
          cfg.data.tokenizer_file, ids.pad, ids.bos, ids.eos);
    say(fmt::format("data: tokenizer {} ({}, {} tokens)", cfg.data.tokenizer_file, shared->kind(),
                    shared->vocab_size()));
    return {shared, shared};
  }
  if (cfg.data.tokenizer == "bpe") {
    std::shared_ptr<const tokenize::Tokenizer> shared = cached_or_trained_bpe(cfg, run_dir, say);
    return {shared, shared};
  }
  if (cfg.data.tokenizer != "word") fail("data.tokenizer: unknown tokenizer '{}'", cfg.data.tokenizer);
  std::vector<std::string> src, tgt;
  for_each_training_pair(cfg, [&](data::SentencePair& pair) {
    src.push_back(std::move(pair.src));
    tgt.push_back(std::move(pair.tgt));
  });
  tokenize::WordLevelTrainOptions options;
  options.min_frequency = cfg.data.min_freq;
  if (text_corpus(cfg)) {
    std::shared_ptr<const tokenize::Tokenizer> shared =
        std::make_shared<tokenize::WordLevelTokenizer>(tokenize::WordLevelTokenizer::train(src, options));
    return {shared, shared};
  }
  return {std::make_shared<tokenize::WordLevelTokenizer>(tokenize::WordLevelTokenizer::train(src, options)),
          std::make_shared<tokenize::WordLevelTokenizer>(tokenize::WordLevelTokenizer::train(tgt, options))};
}

}  // namespace tfm::train
