#include "tokenize/json_fields.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tfm::tokenize {

namespace {

std::string path_of(std::string_view where, std::string_view key) {
  return where.empty() ? std::string(key) : fmt::format("{}.{}", where, key);
}

// The value as the error shows it: scalars as JSON, arrays and objects by their type alone (they can be
// a whole vocabulary).
std::string shown(const nlohmann::json& value) {
  return value.is_structured() ? value.type_name() : value.dump();
}

}  // namespace

const nlohmann::json& member(const nlohmann::json& object, const char* key, std::string_view where) {
  if (!object.is_object()) fail("{} is not an object", where.empty() ? "the tokenizer.json" : where);
  auto it = object.find(key);
  if (it == object.end()) fail("{} is missing", path_of(where, key));
  return *it;
}

const nlohmann::json& object_member(const nlohmann::json& object, const char* key, std::string_view where) {
  const nlohmann::json& value = member(object, key, where);
  if (!value.is_object()) fail("{} is {}, not an object", path_of(where, key), shown(value));
  return value;
}

std::string string_member(const nlohmann::json& object, const char* key, std::string_view where) {
  const nlohmann::json& value = member(object, key, where);
  if (!value.is_string()) fail("{} is {}, not a string", path_of(where, key), shown(value));
  return value.get<std::string>();
}

bool bool_member(const nlohmann::json& object, const char* key, std::string_view where) {
  const nlohmann::json& value = member(object, key, where);
  if (!value.is_boolean()) fail("{} is {}, not true or false", path_of(where, key), shown(value));
  return value.get<bool>();
}

int64_t count_member(const nlohmann::json& object, const char* key, std::string_view where) {
  const nlohmann::json& value = member(object, key, where);
  if (!value.is_number_unsigned()) fail("{} is {}, not a count", path_of(where, key), shown(value));
  return value.get<int64_t>();
}

bool is_null_or_absent(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null();
}

bool optional_bool_member(const nlohmann::json& object, const char* key, bool fallback,
                          std::string_view where) {
  return is_null_or_absent(object, key) ? fallback : bool_member(object, key, where);
}

void expect_null_or_absent(const nlohmann::json& object, const char* key, std::string_view where) {
  if (!is_null_or_absent(object, key))
    fail("{} is not supported (found {})", path_of(where, key), object[key].dump());
}

std::vector<std::string> dense_vocab(const nlohmann::json& vocab_json, std::string_view where) {
  if (!vocab_json.is_object()) fail("{} is {}, not an object", where, shown(vocab_json));
  std::vector<std::string> vocab(vocab_json.size());
  std::vector<bool> seen(vocab_json.size(), false);
  for (const auto& [token, id_json] : vocab_json.items()) {
    if (!id_json.is_number_integer()) fail("{}['{}'] is not an integer", where, token);
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id >= int64_t(vocab.size()))
      fail("{}['{}'] = {} is outside [0, {}) (ids must be 0, 1, ... with no gap)", where, token, id,
           vocab.size());
    if (seen[size_t(id)])
      fail("{}: tokens '{}' and '{}' both have id {}", where, vocab[size_t(id)], token, id);
    seen[size_t(id)] = true;
    vocab[size_t(id)] = token;
  }
  return vocab;
}

nlohmann::ordered_json vocab_to_json(std::span<const std::string> tokens) {
  // Appended to the object's pair vector directly: operator[] searches an ordered object linearly for the
  // key, which is quadratic in the vocabulary size (GPT-2 has 50,257 tokens).
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  auto& entries = vocab.get_ref<nlohmann::ordered_json::object_t&>();
  entries.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) entries.emplace_back(tokens[id], id);
  return vocab;
}

std::vector<std::string> special_tokens_from_json(const nlohmann::json& tokenizer_json,
                                                  std::span<const std::string> vocab,
                                                  bool reject_normalized) {
  std::vector<std::string> tokens;
  if (is_null_or_absent(tokenizer_json, "added_tokens")) return tokens;
  const nlohmann::json& added_tokens = tokenizer_json["added_tokens"];
  if (!added_tokens.is_array()) fail("added_tokens is not an array");
  for (const nlohmann::json& added : added_tokens) {
    const std::string token = string_member(added, "content", "added_tokens[]");
    std::vector<const char*> unsupported = {"single_word", "lstrip", "rstrip"};
    if (reject_normalized) unsupported.push_back("normalized");
    for (const char* flag : unsupported)
      if (added.value(flag, false)) fail("added token '{}': {} is not supported", token, flag);
    if (!added.value("special", false)) fail("added token '{}' is not special: not supported", token);
    const int64_t id = added.value("id", int64_t(-1));
    if (id < 0 || id >= int64_t(vocab.size()) || vocab[size_t(id)] != token)
      fail("added token '{}' with id {} does not match the vocabulary", token, id);
    tokens.push_back(token);
  }
  return tokens;
}

}  // namespace tfm::tokenize
