#include "tokenize/word_level.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "tokenize/json_fields.h"
#include "tokenize/whitespace.h"

namespace tfm::tokenize {

namespace {

using OrderedJson = nlohmann::ordered_json;

std::vector<std::pair<std::string, int64_t>> count_words(std::span<const std::string> lines) {
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& line : lines)
    for (std::string_view word : split_whitespace(line)) ++counts[std::string(word)];
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return sorted;
}

}  // namespace

WordLevelTokenizer::WordLevelTokenizer(std::vector<std::string> vocab, std::string unk_token,
                                       std::vector<std::string> special_tokens)
    : VocabTokenizer(std::move(vocab)), unk_token_(std::move(unk_token)) {
  auto unk = token_to_id(unk_token_);
  if (!unk) fail("unk token '{}' is not in the vocabulary", unk_token_);
  std::vector<int32_t> special_ids;
  for (const std::string& token : special_tokens) {
    auto id = token_to_id(token);
    if (!id) fail("special token '{}' is not in the vocabulary", token);
    special_ids.push_back(*id);
  }
  set_special_tokens(special_ids);
  special_ids_ = {.pad = first_id_of({"[PAD]", "<pad>"}),
                  .unk = *unk,
                  .bos = first_id_of({"[SOS]", "[BOS]", "<s>"}),
                  .eos = first_id_of({"[EOS]", "</s>"})};
}

WordLevelTokenizer WordLevelTokenizer::train(std::span<const std::string> lines,
                                             const WordLevelTrainOptions& options) {
  std::vector<std::string> vocab;
  for (const std::string& token : options.special_tokens)
    if (std::find(vocab.begin(), vocab.end(), token) == vocab.end()) vocab.push_back(token);
  const auto is_special = [&](const std::string& word) {
    return std::find(options.special_tokens.begin(), options.special_tokens.end(), word) !=
           options.special_tokens.end();
  };
  for (auto& [word, count] : count_words(lines)) {
    if (count < options.min_frequency) break;  // sorted by count, descending
    if (!is_special(word)) vocab.push_back(std::move(word));
  }
  if (int64_t(vocab.size()) > options.vocab_size)
    vocab.resize(size_t(std::max<int64_t>(options.vocab_size, 0)));
  return WordLevelTokenizer(std::move(vocab), options.unk_token, options.special_tokens);
}

WordLevelTokenizer WordLevelTokenizer::from_json(const nlohmann::json& json, const std::string& origin) {
  return with_context(origin, [&] {
    const auto& model = object_member(json, "model", "");
    const std::string type = string_member(model, "type", "model");
    if (type != "WordLevel") fail("model.type is \"{}\", not WordLevel", type);
    const auto& pre_tokenizer = object_member(json, "pre_tokenizer", "");
    if (pre_tokenizer.value("type", "") != "Whitespace")
      fail("pre_tokenizer {} is not supported by WordLevel (only Whitespace)", pre_tokenizer.dump());
    for (const char* part : {"normalizer", "post_processor", "decoder", "truncation", "padding"})
      expect_null_or_absent(json, part, "");
    std::vector<std::string> vocab = dense_vocab(member(model, "vocab", "model"), "model.vocab");
    std::vector<std::string> special = special_tokens_from_json(json, vocab, /*reject_normalized=*/false);
    std::string unk = string_member(model, "unk_token", "model");
    return WordLevelTokenizer(std::move(vocab), std::move(unk), std::move(special));
  });
}

void WordLevelTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  for (std::string_view word : split_whitespace(text))
    ids.push_back(token_to_id(word).value_or(special_ids_.unk));
}

std::vector<int32_t> WordLevelTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  encode_with_special_tokens(text, ids);
  return ids;
}

std::string WordLevelTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string text;
  for (std::string_view token : tokens_to_decode(ids, skip_special)) {
    if (!text.empty()) text += ' ';
    text += token;
  }
  return text;
}

std::string WordLevelTokenizer::to_json() const {
  OrderedJson json = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", special_tokens_json(/*sorted_by_id=*/false)},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Whitespace"}}},
      {"post_processor", nullptr},
      {"decoder", nullptr},
      {"model", {{"type", "WordLevel"}, {"vocab", vocab_to_json(vocab_)}, {"unk_token", unk_token_}}}};
  return json.dump(2);
}

}  // namespace tfm::tokenize
