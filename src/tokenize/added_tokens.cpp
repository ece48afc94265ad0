#include "tokenize/added_tokens.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace tfm::tokenize {

AddedTokenSplitter::AddedTokenSplitter(std::span<const AddedToken> tokens)
    : tokens_(tokens.begin(), tokens.end()) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) fail("added token {} is empty", tokens_[i].id);
    Pass& pass = tokens_[i].normalized ? normalized_ : unnormalized_;
    pass.tokens.push_back(i);
    pass.starts[uint8_t(tokens_[i].content[0])] = true;
  }
  for (Pass* pass : {&unnormalized_, &normalized_})
    std::stable_sort(pass->tokens.begin(), pass->tokens.end(), [&](size_t a, size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
}

void AddedTokenSplitter::split_pass(const Pass& pass, std::string_view text,
                                    std::vector<TextSegment>& out) const {
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (!pass.starts[uint8_t(text[pos])]) continue;
    for (size_t index : pass.tokens) {
      const AddedToken& token = tokens_[index];
      if (text.compare(pos, token.content.size(), token.content) != 0) continue;
      if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start)});
      out.push_back({text.substr(pos, token.content.size()), token.id});
      pos += token.content.size() - 1;
      plain_start = pos + 1;
      break;
    }
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start)});
}

void AddedTokenSplitter::split(std::string_view text, std::vector<TextSegment>& segments) const {
  segments.clear();
  split_pass(unnormalized_, text, segments);
  if (normalized_.tokens.empty()) return;
  std::vector<TextSegment> first_pass;
  first_pass.swap(segments);
  for (const TextSegment& segment : first_pass) {
    if (segment.token_id >= 0)
      segments.push_back(segment);
    else
      split_pass(normalized_, segment.text, segments);
  }
}

std::vector<AddedToken> added_tokens_from_json(const nlohmann::json& tokenizer_json) {
  std::vector<AddedToken> tokens;
  auto it = tokenizer_json.find("added_tokens");
  if (it == tokenizer_json.end() || it->is_null()) return tokens;
  if (!it->is_array()) fail("added_tokens is not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& entry = (*it)[i];
    with_context(fmt::format("added_tokens[{}]", i), [&] {
      if (!entry.is_object()) fail("not an object");
      if (!entry.contains("content") || !entry["content"].is_string())
        fail("content is missing or not a string");
      if (!entry.contains("id") || !entry["id"].is_number_integer()) fail("id is missing or not an integer");
      const int64_t id = entry["id"].get<int64_t>();  // checked before narrowing: 2^32 would become 0
      if (id < 0 || id > std::numeric_limits<int32_t>::max())
        fail("id {} is not a token id", entry["id"].dump());
      AddedToken token{.content = entry["content"].get<std::string>(),
                       .id = int32_t(id),
                       .special = entry.value("special", false),
                       .normalized = entry.value("normalized", true)};
      for (const char* flag : {"single_word", "lstrip", "rstrip"})
        if (entry.value(flag, false)) fail("token '{}': {} is not supported", token.content, flag);
      if (token.content.empty()) fail("content is empty");
      tokens.push_back(std::move(token));
    });
  }
  return tokens;
}

nlohmann::ordered_json added_tokens_to_json(std::span<const AddedToken> tokens) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const AddedToken& token : tokens)
    array.push_back({{"id", token.id},
                     {"content", token.content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", token.normalized},
                     {"special", token.special}});
  return array;
}

}  // namespace tfm::tokenize
