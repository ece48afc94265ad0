#include "tokenize/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tokenize/bpe.h"
#include "tokenize/word_level.h"

namespace tfm::tokenize {

std::string Tokenizer::hash() const {
  uint64_t h = 0xcbf29ce484222325ull;  // 64-bit FNV-1a
  for (unsigned char byte : to_json()) h = (h ^ byte) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& json_text, const std::string& origin) {
  try {
    const nlohmann::json json = nlohmann::json::parse(json_text);
    if (!json.is_object() || !json.contains("model") || !json["model"].is_object())
      fail("{}: not a tokenizer.json (no model object)", origin);
    const nlohmann::json type = json["model"].value("type", nlohmann::json());
    if (type == "WordLevel")
      return std::make_unique<WordLevelTokenizer>(WordLevelTokenizer::from_json(json, origin));
    if (type == "BPE") return std::make_unique<BpeTokenizer>(BpeTokenizer::from_json(json, origin));
    fail("{}: unsupported tokenizer model type {} (supported: WordLevel, BPE)", origin, type.dump());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid tokenizer.json: {}", origin, e.what());
  }
}

namespace {

std::unique_ptr<Tokenizer> load_tokenizer_json_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail("{}: cannot open", path);
  std::ostringstream text;
  text << file.rdbuf();
  return load_tokenizer_json(text.str(), path);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path location(path);
  if (fs::is_directory(location)) {
    if (fs::is_regular_file(location / "tokenizer.json"))
      return load_tokenizer_json_file(location / "tokenizer.json");
    fail("{}: directory without a tokenizer.json", path);
  }
  if (!fs::exists(location)) fail("{}: no such file or directory", path);
  const std::string name = location.filename().string();
  if (name == "encoder.json" || name == "vocab.json") {
    for (const char* merges : {"vocab.bpe", "merges.txt"}) {
      const fs::path merges_path = location.parent_path() / merges;
      if (fs::is_regular_file(merges_path))
        return std::make_unique<BpeTokenizer>(BpeTokenizer::from_gpt2_files(path, merges_path));
    }
    fail("{}: a GPT-2 vocabulary needs vocab.bpe or merges.txt beside it", path);
  }
  if (location.extension() == ".json") return load_tokenizer_json_file(path);
  fail("{}: not a tokenizer (expected tokenizer.json, a directory holding one, or GPT-2's encoder.json)",
       path);
}

}  // namespace tfm::tokenize
