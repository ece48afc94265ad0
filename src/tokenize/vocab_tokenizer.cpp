#include "tokenize/vocab_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"

namespace tfm::tokenize {

VocabTokenizer::VocabTokenizer(std::vector<std::string> vocab) : vocab_(std::move(vocab)) {
  for (size_t id = 0; id < vocab_.size(); ++id) {
    if (vocab_[id].empty()) fail("token {} is empty", id);
    if (find_invalid_utf8(vocab_[id])) fail("token {} is not valid UTF-8", id);
    auto [it, inserted] = ids_.emplace(vocab_[id], int32_t(id));
    if (!inserted) fail("token '{}' has two ids, {} and {}", vocab_[id], it->second, id);
  }
}

std::optional<int32_t> VocabTokenizer::token_to_id(std::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> VocabTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return std::nullopt;
  return vocab_[size_t(id)];
}

void VocabTokenizer::set_special_tokens(std::span<const int32_t> ids) {
  special_tokens_.clear();
  for (int32_t id : ids)
    if (!is_special(id)) special_tokens_.push_back({.content = vocab_[size_t(id)], .id = id});
  special_splitter_ = AddedTokenSplitter(special_tokens_);
}

bool VocabTokenizer::is_special(int32_t id) const {
  return std::any_of(special_tokens_.begin(), special_tokens_.end(),
                     [&](const AddedToken& token) { return token.id == id; });
}

nlohmann::ordered_json VocabTokenizer::special_tokens_json(bool sorted_by_id) const {
  std::vector<AddedToken> tokens = special_tokens_;
  if (sorted_by_id)
    std::sort(tokens.begin(), tokens.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return added_tokens_to_json(tokens);
}

int32_t VocabTokenizer::first_id_of(std::initializer_list<std::string_view> tokens) const {
  for (std::string_view token : tokens)
    if (auto id = token_to_id(token)) return *id;
  return -1;
}

void VocabTokenizer::encode_with_special_tokens(std::string_view text, std::vector<int32_t>& ids) const {
  if (auto bad = find_invalid_utf8(text)) fail("cannot encode: invalid UTF-8 at byte offset {}", *bad);
  std::vector<TextSegment> segments;
  special_splitter_.split(text, segments);
  for (const TextSegment& segment : segments) {
    if (segment.token_id >= 0)
      ids.push_back(segment.token_id);
    else
      encode_plain(segment.text, ids);
  }
}

std::vector<std::string_view> VocabTokenizer::tokens_to_decode(std::span<const int32_t> ids,
                                                               bool skip_special) const {
  std::vector<std::string_view> tokens;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) fail("token id {} is outside the vocabulary [0, {})", id, vocab_size());
    if (!(skip_special && is_special(id))) tokens.push_back(vocab_[size_t(id)]);
  }
  return tokens;
}

}  // namespace tfm::tokenize
