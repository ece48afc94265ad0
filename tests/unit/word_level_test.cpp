#include "tokenize/word_level.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/error.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {
namespace {

using Ids = std::vector<int32_t>;

WordLevelTokenizer toy(int64_t min_frequency = 2) {
  const std::vector<std::string> lines = {"the cat sat.", "the dog sat!", "The cat ran.", "z é z é B a B a"};
  WordLevelTrainOptions options;
  options.min_frequency = min_frequency;
  return WordLevelTokenizer::train(lines, options);
}

std::vector<std::string> tokens(const Tokenizer& tokenizer) {
  std::vector<std::string> all;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) all.push_back(*tokenizer.id_to_token(id));
  return all;
}

std::string load_error(const std::string& json) {
  try {
    load_tokenizer_json(json, "tok.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(WordLevel, TrainingOrder) {
  // Counts: the 2, cat 2, sat 2, . 2, z 2, é 2, B 2, a 2; dog ! The ran 1. Specials first, then by count
  // (all 2 here) and bytes: "." < "B" < "a" < "cat" < "sat" < "the" < "z" < "é" (0xC3).
  EXPECT_EQ(tokens(toy()), (std::vector<std::string>{"[UNK]", "[PAD]", "[SOS]", "[EOS]", ".", "B", "a", "cat",
                                                     "sat", "the", "z", "é"}));
}

TEST(WordLevel, CountBeforeBytes) {
  const std::vector<std::string> lines = {"b b b a a c c", "c"};
  WordLevelTrainOptions options;
  options.special_tokens = {"[UNK]"};
  options.min_frequency = 1;
  EXPECT_EQ(tokens(WordLevelTokenizer::train(lines, options)),
            (std::vector<std::string>{"[UNK]", "b", "c", "a"}));
  options.vocab_size = 3;
  EXPECT_EQ(tokens(WordLevelTokenizer::train(lines, options)), (std::vector<std::string>{"[UNK]", "b", "c"}));
}

TEST(WordLevel, MinFrequency) {
  EXPECT_EQ(toy(2).vocab_size(), 12);
  EXPECT_EQ(toy(3).vocab_size(), 4);  // only the specials
  const auto all = toy(1);
  EXPECT_EQ(all.vocab_size(), 16);
  EXPECT_EQ(*all.id_to_token(12), "!");  // count 1, "!" < "The" < "dog" < "ran"
  EXPECT_EQ(*all.id_to_token(15), "ran");
}

TEST(WordLevel, SpecialIds) {
  const auto tokenizer = toy();
  EXPECT_EQ(tokenizer.unk_id(), 0);
  EXPECT_EQ(tokenizer.pad_id(), 1);
  EXPECT_EQ(tokenizer.bos_id(), 2);
  EXPECT_EQ(tokenizer.eos_id(), 3);
  WordLevelTrainOptions options;
  options.special_tokens = {"[UNK]"};
  const auto bare = WordLevelTokenizer::train(std::vector<std::string>{"a a"}, options);
  EXPECT_EQ(bare.pad_id(), -1);
  EXPECT_EQ(bare.bos_id(), -1);
  EXPECT_EQ(bare.eos_id(), -1);
}

TEST(WordLevel, EncodeAndDecode) {
  const auto tokenizer = toy();
  EXPECT_EQ(tokenizer.encode("the dog sat."), (Ids{9, 0, 8, 4}));
  EXPECT_EQ(tokenizer.encode(""), Ids{});
  // Special tokens in the text are matched before splitting.
  EXPECT_EQ(tokenizer.encode("[SOS]the cat[EOS] [PAD]"), (Ids{2, 9, 7, 3, 1}));
  EXPECT_EQ(tokenizer.decode(Ids{2, 9, 0, 8, 4, 3, 1}), "the sat .");
  EXPECT_EQ(tokenizer.decode(Ids{2, 9, 0, 8, 4, 3, 1}, false), "[SOS] the [UNK] sat . [EOS] [PAD]");
  EXPECT_EQ(tokenizer.decode(Ids{}), "");
  EXPECT_THROW(tokenizer.decode(Ids{12}), Error);
  EXPECT_THROW(tokenizer.encode("bad \xFF"), Error);
  EXPECT_EQ(tokenizer.token_to_id("cat"), 7);
  EXPECT_EQ(tokenizer.token_to_id("dog"), std::nullopt);
  EXPECT_EQ(tokenizer.id_to_token(-1), std::nullopt);
}

TEST(WordLevel, JsonFormat) {
  const auto json = nlohmann::json::parse(toy().to_json());
  EXPECT_EQ(json["model"]["type"], "WordLevel");
  EXPECT_EQ(json["model"]["unk_token"], "[UNK]");
  EXPECT_EQ(json["model"]["vocab"]["cat"], 7);
  EXPECT_EQ(json["model"]["vocab"].size(), 12u);
  EXPECT_EQ(json["pre_tokenizer"]["type"], "Whitespace");
  EXPECT_TRUE(json["normalizer"].is_null());
  EXPECT_TRUE(json["decoder"].is_null());
  ASSERT_EQ(json["added_tokens"].size(), 4u);
  EXPECT_EQ(json["added_tokens"][2]["content"], "[SOS]");
  EXPECT_EQ(json["added_tokens"][2]["id"], 2);
  EXPECT_EQ(json["added_tokens"][2]["special"], true);
}

TEST(WordLevel, JsonRoundTrip) {
  const auto original = toy(1);
  const std::string json = original.to_json();
  const auto loaded = load_tokenizer_json(json, "tok.json");
  EXPECT_EQ(loaded->kind(), "WordLevel");
  EXPECT_EQ(loaded->to_json(), json);
  EXPECT_EQ(loaded->hash(), original.hash());
  EXPECT_EQ(loaded->hash().size(), 16u);
  EXPECT_NE(toy(2).hash(), original.hash());
  EXPECT_EQ(tokens(*loaded), tokens(original));
  EXPECT_EQ(loaded->encode("The cat [EOS] ran!"), original.encode("The cat [EOS] ran!"));
  EXPECT_EQ(loaded->eos_id(), 3);
}

TEST(WordLevel, LoadErrorsNameTheOrigin) {
  EXPECT_EQ(load_error("{").rfind("tok.json: invalid tokenizer.json: ", 0), 0u) << load_error("{");
  EXPECT_EQ(load_error("[]"), "tok.json: not a tokenizer.json (no model object)");
  EXPECT_EQ(load_error(R"({"model": {"type": "Unigram"}})"),
            "tok.json: unsupported tokenizer model type \"Unigram\" (supported: WordLevel, BPE, WordPiece)");

  auto with_model = [](const std::string& model) {
    return R"({"pre_tokenizer": {"type": "Whitespace"}, "model": )" + model + "}";
  };
  EXPECT_EQ(
      load_error(with_model(R"({"type": "WordLevel", "vocab": {"a": 0, "[UNK]": 0}, "unk_token": "[UNK]"})")),
      "tok.json: model.vocab: tokens '[UNK]' and 'a' both have id 0");
  EXPECT_EQ(load_error(with_model(R"({"type": "WordLevel", "vocab": {"a": 0, "b": 5}, "unk_token": "a"})")),
            "tok.json: model.vocab['b'] = 5 is outside [0, 2) (ids must be 0, 1, ... with no gap)");
  EXPECT_EQ(load_error(with_model(R"({"type": "WordLevel", "vocab": {"a": 0}})")),
            "tok.json: model.unk_token is missing");
  EXPECT_EQ(load_error(with_model(R"({"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "[UNK]"})")),
            "tok.json: unk token '[UNK]' is not in the vocabulary");
  EXPECT_EQ(
      load_error(R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "WordLevel"}})"),
      "tok.json: pre_tokenizer {\"type\":\"ByteLevel\"} is not supported by WordLevel (only Whitespace)");
  EXPECT_EQ(load_error(with_model(R"({"type": "WordLevel", "vocab": {"a": "x"}, "unk_token": "a"})")),
            "tok.json: model.vocab['a'] is not an integer");
}

}  // namespace
}  // namespace tfm::tokenize
