#include "tokenize/word_level.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"
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

// The JSON value at `key` of `object`, which must be there and of type `type`.
const nlohmann::json& member(const nlohmann::json& object, const char* key, nlohmann::json::value_t type,
                             const char* where) {
  auto it = object.find(key);
  if (it == object.end()) fail("{}.{} is missing", where, key);
  if (it->type() != type) fail("{}.{} has type {}", where, key, it->type_name());
  return *it;
}

// Fails unless `object[key]` is absent or null: parts of tokenizer.json this tokenizer does not implement.
void expect_null(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it != object.end() && !it->is_null())
    fail("{} is not supported by WordLevel (found {})", key, it->dump());
}

std::vector<std::string> vocab_from_json(const nlohmann::json& model) {
  const auto& vocab_json = member(model, "vocab", nlohmann::json::value_t::object, "model");
  std::vector<std::string> vocab(vocab_json.size());
  std::vector<bool> seen(vocab_json.size(), false);
  for (const auto& [token, id_json] : vocab_json.items()) {
    if (!id_json.is_number_integer()) fail("model.vocab['{}'] is not an integer", token);
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id >= int64_t(vocab.size()))
      fail("model.vocab['{}'] = {} is outside [0, {})", token, id, vocab.size());
    if (seen[size_t(id)]) fail("tokens '{}' and '{}' both have id {}", vocab[size_t(id)], token, id);
    seen[size_t(id)] = true;
    vocab[size_t(id)] = token;
  }
  return vocab;
}

std::vector<std::string> added_tokens_from_json(const nlohmann::json& json,
                                                const std::vector<std::string>& vocab) {
  std::vector<std::string> tokens;
  auto it = json.find("added_tokens");
  if (it == json.end() || it->is_null()) return tokens;
  if (!it->is_array()) fail("added_tokens is not an array");
  for (const auto& added : *it) {
    const auto& content = member(added, "content", nlohmann::json::value_t::string, "added_tokens[]");
    const std::string token = content.get<std::string>();
    for (const char* flag : {"single_word", "lstrip", "rstrip"})
      if (added.value(flag, false)) fail("added token '{}': {} is not supported", token, flag);
    if (!added.value("special", false)) fail("added token '{}' is not special: not supported", token);
    const int64_t id = added.value("id", int64_t(-1));
    if (id < 0 || id >= int64_t(vocab.size()) || vocab[size_t(id)] != token)
      fail("added token '{}' with id {} does not match the vocabulary", token, id);
    tokens.push_back(token);
  }
  return tokens;
}

}  // namespace

WordLevelTokenizer::WordLevelTokenizer(std::vector<std::string> vocab, std::string unk_token,
                                       std::vector<std::string> special_tokens)
    : vocab_(std::move(vocab)), unk_token_(std::move(unk_token)) {
  for (size_t id = 0; id < vocab_.size(); ++id) {
    if (find_invalid_utf8(vocab_[id])) fail("token {} is not valid UTF-8", id);
    if (vocab_[id].empty()) fail("token {} is empty", id);
    auto [it, inserted] = ids_.emplace(vocab_[id], int32_t(id));
    if (!inserted) fail("token '{}' has two ids, {} and {}", vocab_[id], it->second, id);
  }
  auto unk = token_to_id(unk_token_);
  if (!unk) fail("unk token '{}' is not in the vocabulary", unk_token_);
  for (const std::string& token : special_tokens) {
    auto id = token_to_id(token);
    if (!id) fail("special token '{}' is not in the vocabulary", token);
    if (!is_special(*id)) special_tokens_.push_back(*id);
  }
  auto first_of = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view name : names)
      if (auto id = token_to_id(name)) return *id;
    return int32_t(-1);
  };
  special_ids_ = {.pad = first_of({"[PAD]", "<pad>"}),
                  .unk = *unk,
                  .bos = first_of({"[SOS]", "[BOS]", "<s>"}),
                  .eos = first_of({"[EOS]", "</s>"})};
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
    const auto& model = member(json, "model", nlohmann::json::value_t::object, "tokenizer");
    const auto& type = member(model, "type", nlohmann::json::value_t::string, "model");
    if (type != "WordLevel") fail("model.type is {}, not WordLevel", type.dump());
    const auto& pre_tokenizer = member(json, "pre_tokenizer", nlohmann::json::value_t::object, "tokenizer");
    if (pre_tokenizer.value("type", "") != "Whitespace")
      fail("pre_tokenizer {} is not supported by WordLevel (only Whitespace)", pre_tokenizer.dump());
    for (const char* part : {"normalizer", "post_processor", "decoder", "truncation", "padding"})
      expect_null(json, part);
    std::vector<std::string> vocab = vocab_from_json(model);
    std::vector<std::string> added = added_tokens_from_json(json, vocab);
    auto unk = member(model, "unk_token", nlohmann::json::value_t::string, "model").get<std::string>();
    return WordLevelTokenizer(std::move(vocab), std::move(unk), std::move(added));
  });
}

std::optional<int32_t> WordLevelTokenizer::token_to_id(std::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> WordLevelTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return std::nullopt;
  return vocab_[size_t(id)];
}

bool WordLevelTokenizer::is_special(int32_t id) const {
  return std::find(special_tokens_.begin(), special_tokens_.end(), id) != special_tokens_.end();
}

void WordLevelTokenizer::encode_words(std::string_view text, std::vector<int32_t>& ids) const {
  for (std::string_view word : split_whitespace(text))
    ids.push_back(token_to_id(word).value_or(special_ids_.unk));
}

std::vector<int32_t> WordLevelTokenizer::encode(std::string_view text) const {
  if (auto bad = find_invalid_utf8(text)) fail("cannot encode: invalid UTF-8 at byte offset {}", *bad);
  std::vector<int32_t> ids;
  size_t plain_start = 0;  // start of the text not yet encoded
  size_t pos = 0;
  while (pos < text.size()) {
    // The longest special token that starts here (the leftmost-longest match, as Hugging Face splits).
    size_t match_length = 0;
    int32_t match_id = -1;
    for (int32_t id : special_tokens_) {
      const std::string& token = vocab_[size_t(id)];
      if (token.size() > match_length && text.substr(pos).starts_with(token)) {
        match_length = token.size();
        match_id = id;
      }
    }
    if (match_length == 0) {
      ++pos;
      continue;
    }
    encode_words(text.substr(plain_start, pos - plain_start), ids);
    ids.push_back(match_id);
    pos += match_length;
    plain_start = pos;
  }
  encode_words(text.substr(plain_start), ids);
  return ids;
}

std::string WordLevelTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string text;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) fail("token id {} is outside the vocabulary [0, {})", id, vocab_size());
    if (skip_special && is_special(id)) continue;
    if (!first) text += ' ';
    text += vocab_[size_t(id)];
    first = false;
  }
  return text;
}

std::string WordLevelTokenizer::to_json() const {
  OrderedJson added = OrderedJson::array();
  for (int32_t id : special_tokens_)
    added.push_back({{"id", id},
                     {"content", vocab_[size_t(id)]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  // Appended to the object's pair vector directly: operator[] searches the ordered object linearly for
  // the key, which made this quadratic in the vocabulary size. Tokens are unique by construction.
  OrderedJson vocab = OrderedJson::object();
  auto& entries = vocab.get_ref<OrderedJson::object_t&>();
  entries.reserve(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) entries.emplace_back(vocab_[id], id);
  OrderedJson json = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added)},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Whitespace"}}},
      {"post_processor", nullptr},
      {"decoder", nullptr},
      {"model", {{"type", "WordLevel"}, {"vocab", std::move(vocab)}, {"unk_token", unk_token_}}}};
  return json.dump(2);
}

}  // namespace tfm::tokenize
