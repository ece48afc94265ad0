#include "tokenize/template_processing.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tfm::tokenize {

namespace {

// The ids of special token `name` in the template's special_tokens map.
std::vector<int32_t> special_token_ids(const nlohmann::json& special_tokens, const std::string& name,
                                       int32_t vocab_size) {
  auto it = special_tokens.find(name);
  if (it == special_tokens.end() || !it->is_object() || !it->contains("ids") || !(*it)["ids"].is_array())
    fail("post_processor.special_tokens has no ids for '{}'", name);
  std::vector<int32_t> ids;
  for (const auto& id : (*it)["ids"]) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab_size)
      fail("post_processor.special_tokens['{}'].ids: {} is not a token id in [0, {})", name, id.dump(),
           vocab_size);
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

}  // namespace

TemplateProcessing TemplateProcessing::from_json(const nlohmann::json& post_processor, int32_t vocab_size) {
  TemplateProcessing processing;
  processing.json_text_ = post_processor.dump();
  auto single = post_processor.find("single");
  if (single == post_processor.end() || !single->is_array()) fail("post_processor.single is not an array");
  const nlohmann::json special_tokens = post_processor.value("special_tokens", nlohmann::json::object());
  if (!special_tokens.is_object()) fail("post_processor.special_tokens is not an object");
  for (const auto& piece : *single) {
    if (piece.contains("Sequence") && piece["Sequence"].is_object()) {
      if (piece["Sequence"].value("id", "") != "A")
        fail("post_processor.single: sequence {} is not A", piece["Sequence"].dump());
      processing.single_.push_back({.is_sequence = true, .ids = {}});
    } else if (piece.contains("SpecialToken") && piece["SpecialToken"].is_object() &&
               piece["SpecialToken"].contains("id") && piece["SpecialToken"]["id"].is_string()) {
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      processing.single_.push_back({.ids = special_token_ids(special_tokens, name, vocab_size)});
    } else {
      fail("post_processor.single: {} is neither a Sequence nor a SpecialToken", piece.dump());
    }
  }
  return processing;
}

void TemplateProcessing::apply(std::vector<int32_t>& ids) const {
  if (single_.size() == 1 && single_[0].is_sequence) return;
  std::vector<int32_t> out;
  for (const Piece& piece : single_) {
    if (piece.is_sequence)
      out.insert(out.end(), ids.begin(), ids.end());
    else
      out.insert(out.end(), piece.ids.begin(), piece.ids.end());
  }
  ids.swap(out);
}

nlohmann::ordered_json TemplateProcessing::to_json() const {
  // Keys in the order Hugging Face writes them; the values as read (their own keys are sorted, as there).
  const nlohmann::ordered_json read = nlohmann::ordered_json::parse(json_text_);
  nlohmann::ordered_json json = {{"type", "TemplateProcessing"}};
  for (const char* key : {"single", "pair", "special_tokens"})
    if (read.contains(key)) json[key] = read[key];
  return json;
}

}  // namespace tfm::tokenize
