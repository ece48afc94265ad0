// Added tokens (Hugging Face's AddedVocabulary): strings such as "<pad>" or "</s>" that are matched in
// the raw text before any pre-tokenization and become one token each, whatever the model would make of
// them. Hugging Face matches them in two passes: first the tokens with normalized = false (the default
// for special tokens) over the whole text, then the tokens with normalized = true over the text left
// between the first pass's matches; each pass takes, at the leftmost position where a token matches, the
// longest token that matches there.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tfm::tokenize {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;      // skipped by decode(skip_special = true)
  bool normalized = false;  // matched in the second pass (see above)
};

// One piece of the text: plain text to tokenize, or an added token (id >= 0, text = its match).
struct TextSegment {
  std::string_view text;
  int32_t token_id = -1;
};

class AddedTokenSplitter {
 public:
  explicit AddedTokenSplitter(std::span<const AddedToken> tokens);
  // Replaces `segments` with the pieces of `text`, in order; the plain pieces are never empty.
  void split(std::string_view text, std::vector<TextSegment>& segments) const;

 private:
  struct Pass {
    std::vector<size_t> tokens;  // indices into tokens_, longest first
    bool starts[256] = {};       // first bytes of the tokens
  };
  void split_pass(const Pass& pass, std::string_view text, std::vector<TextSegment>& out) const;

  std::vector<AddedToken> tokens_;
  Pass unnormalized_, normalized_;
};

// The added_tokens array of a tokenizer.json; errors name the entry. Options this code does not
// implement (single_word, lstrip, rstrip) are rejected.
std::vector<AddedToken> added_tokens_from_json(const nlohmann::json& tokenizer_json);
// The added_tokens array as Hugging Face writes it.
nlohmann::ordered_json added_tokens_to_json(std::span<const AddedToken> tokens);

}  // namespace tfm::tokenize
