// What the WordLevel and WordPiece tokenizers share: a vocabulary in which token i has id i, and special
// tokens of that vocabulary. As Hugging Face's added tokens with normalized = false (added_tokens.h), the
// special tokens are matched verbatim in the raw text, leftmost then longest, before the model sees the
// text between them; decode(ids, skip_special = true) drops them.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenize/added_tokens.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {

class VocabTokenizer : public Tokenizer {
 public:
  int32_t vocab_size() const override { return int32_t(vocab_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::optional<std::string> id_to_token(int32_t id) const override;
  SpecialIds special_ids() const override { return special_ids_; }

 protected:
  // vocab[i] is the token with id i. Throws tfm::Error for an empty token, one that is not valid UTF-8 or
  // one that has two ids.
  explicit VocabTokenizer(std::vector<std::string> vocab);

  // Makes `ids` the special tokens, in this order; a repeated id counts once.
  void set_special_tokens(std::span<const int32_t> ids);
  bool is_special(int32_t id) const;
  // The special tokens as tokenizer.json's added_tokens array, in the order given or by id.
  nlohmann::ordered_json special_tokens_json(bool sorted_by_id) const;
  // The id of the first of `tokens` that is in the vocabulary; -1 when none is.
  int32_t first_id_of(std::initializer_list<std::string_view> tokens) const;

  // Appends the ids of `text` (which must be valid UTF-8): those of the special tokens it holds, and
  // what encode_plain makes of the text before, between and after them.
  void encode_with_special_tokens(std::string_view text, std::vector<int32_t>& ids) const;
  // The model on text that holds no special token; appends to `ids`.
  virtual void encode_plain(std::string_view text, std::vector<int32_t>& ids) const = 0;
  // The tokens decode() joins: those of `ids` without the special ones when skip_special. Throws
  // tfm::Error for an id outside the vocabulary.
  std::vector<std::string_view> tokens_to_decode(std::span<const int32_t> ids, bool skip_special) const;

  std::vector<std::string> vocab_;
  SpecialIds special_ids_;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  std::vector<AddedToken> special_tokens_;
  AddedTokenSplitter special_splitter_{special_tokens_};
};

}  // namespace tfm::tokenize
