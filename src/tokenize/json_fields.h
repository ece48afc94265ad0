// Reading the fields of a tokenizer.json with errors that name the field by its path. `where` is the path
// of the object that holds the field ("model", "normalizer"; "" for the top level), so that a missing
// model.vocab reads "model.vocab is missing". And writing its model.vocab.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tfm::tokenize {

// object[key], which must be there; fails if `object` is not an object.
const nlohmann::json& member(const nlohmann::json& object, const char* key, std::string_view where);
const nlohmann::json& object_member(const nlohmann::json& object, const char* key, std::string_view where);
std::string string_member(const nlohmann::json& object, const char* key, std::string_view where);
bool bool_member(const nlohmann::json& object, const char* key, std::string_view where);
int64_t count_member(const nlohmann::json& object, const char* key, std::string_view where);  // >= 0

bool is_null_or_absent(const nlohmann::json& object, const char* key);
// object[key] as a boolean, or `fallback` when it is null or absent.
bool optional_bool_member(const nlohmann::json& object, const char* key, bool fallback,
                          std::string_view where);
// Fails unless object[key] is null or absent: for the parts of a tokenizer.json a tokenizer does not
// implement.
void expect_null_or_absent(const nlohmann::json& object, const char* key, std::string_view where);

// The tokens of a {token: id} object whose ids are 0, 1, ..., n - 1, each given once: token i is result[i].
// `where` is the object's own path ("model.vocab").
std::vector<std::string> dense_vocab(const nlohmann::json& vocab_json, std::string_view where);

// The inverse: {tokens[0]: 0, tokens[1]: 1, ...}, in id order. The tokens must be distinct.
nlohmann::ordered_json vocab_to_json(std::span<const std::string> tokens);

// The added_tokens of a tokenizer.json whose added tokens must all be special tokens of `vocab`, each with
// the id it has there, matched in the raw text (no single_word, lstrip or rstrip). With
// `reject_normalized`, a token with normalized = true is refused too (for a model with a normalizer, whose
// added tokens would then be matched in the normalized text). The contents, in the array's order.
std::vector<std::string> special_tokens_from_json(const nlohmann::json& tokenizer_json,
                                                  std::span<const std::string> vocab, bool reject_normalized);

}  // namespace tfm::tokenize
