// Hugging Face's TemplateProcessing post-processor, for single sequences: the template
// "$A </s>" (tokenizer.json: "single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}])
// turns the ids of a text into those ids followed by the ids of the special token "</s>". The "pair"
// template is not used by encode() and is kept only so that to_json() writes back what was read.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tfm::tokenize {

class TemplateProcessing {
 public:
  // From the post_processor object of a tokenizer.json. Every special token's ids must be in
  // [0, vocab_size). Errors name the field.
  static TemplateProcessing from_json(const nlohmann::json& post_processor, int32_t vocab_size);

  // `ids` (the text's tokens) rewritten as the single template.
  void apply(std::vector<int32_t>& ids) const;
  // The post_processor object as it was read (type, single, pair, special_tokens).
  nlohmann::ordered_json to_json() const;

 private:
  struct Piece {
    bool is_sequence = false;
    std::vector<int32_t> ids;  // a special token's ids
  };
  std::vector<Piece> single_;
  std::string json_text_;
};

}  // namespace tfm::tokenize
