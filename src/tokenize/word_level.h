// The word-level tokenizer of the seed transformer: Hugging Face tokenizers' WordLevel model behind the
// Whitespace pre-tokenizer (see whitespace.h), trained like WordLevelTrainer.
//
// Added tokens (the special tokens) are matched verbatim in the text first, as Hugging Face does: "[SOS]"
// in the text is the [SOS] token. Every other word is looked up whole; unknown words become the unk token.
// decode() joins the tokens with single spaces.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/vocab_tokenizer.h"

namespace tfm::tokenize {

// What WordLevelTrainer(min_frequency=2, special_tokens=["[UNK]", "[PAD]", "[SOS]", "[EOS]"]) does, with
// WordLevel(unk_token="[UNK]"), as the seed trains it.
struct WordLevelTrainOptions {
  int64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"[UNK]", "[PAD]", "[SOS]", "[EOS]"};
  std::string unk_token = "[UNK]";
  int64_t vocab_size = 30000;  // the most tokens kept, special tokens included (the trainer's default)
};

class WordLevelTokenizer final : public VocabTokenizer {
 public:
  // vocab[i] is the token with id i. `special_tokens` must be in `vocab`, and so must `unk_token`.
  // Throws tfm::Error for a duplicate token or a missing unk or special token.
  WordLevelTokenizer(std::vector<std::string> vocab, std::string unk_token,
                     std::vector<std::string> special_tokens);

  // Special tokens get ids 0, 1, ... in the order given; then every word seen at least min_frequency
  // times, the most frequent first, ties by the word's bytes ascending; at most vocab_size tokens in all.
  static WordLevelTokenizer train(std::span<const std::string> lines, const WordLevelTrainOptions& options);
  // From a parsed tokenizer.json whose model.type is "WordLevel"; errors name `origin`.
  static WordLevelTokenizer from_json(const nlohmann::json& json, const std::string& origin);

  std::string_view kind() const override { return "WordLevel"; }
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const override;
  std::string to_json() const override;

 private:
  // The Whitespace pre-tokenizer, then each word whole or the unk token.
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const override;

  std::string unk_token_;
};

}  // namespace tfm::tokenize
