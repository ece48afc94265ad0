#include "tokenize/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenize/sentencepiece.h"
#include "tokenize/word_level.h"
#include "tokenize/wordpiece.h"

namespace tfm::tokenize {

std::string Tokenizer::hash() const {
  uint64_t h = 0xcbf29ce484222325ull;  // 64-bit FNV-1a
  for (unsigned char byte : to_json()) h = (h ^ byte) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& json_text, const std::string& origin) {
  try {
    const nlohmann::json json = nlohmann::json::parse(json_text);
    if (SentencePieceTokenizer::is_wrapper_json(json))
      return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::from_json(json, origin));
    if (!json.is_object() || !json.contains("model") || !json["model"].is_object())
      fail("{}: not a tokenizer.json (no model object)", origin);
    const nlohmann::json type = json["model"].value("type", nlohmann::json());
    if (type == "WordLevel")
      return std::make_unique<WordLevelTokenizer>(WordLevelTokenizer::from_json(json, origin));
    if (type == "WordPiece")
      return std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_json(json, origin));
    fail("{}: unsupported tokenizer model type {} (supported: WordLevel, WordPiece)", origin, type.dump());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid tokenizer.json: {}", origin, e.what());
  }
}

}  // namespace tfm::tokenize
