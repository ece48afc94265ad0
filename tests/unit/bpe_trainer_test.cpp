// BPE training against Hugging Face's BpeTrainer: the bpe600 fixture was trained by Hugging Face on
// the English side of the first 2,000 lines of bible-en-es/train.tsv (vocab 600, min frequency 2, "<pad>"
// special); training on the same lines must give the same vocabulary (ids) and merges, in order. The
// shipped models' tokenizers were trained by Hugging Face too: mt-en-es on both sides of train.tsv
// (8,000 tokens, specials <pad> </s> <unk>) and lm-kjv on kjv.txt (8,000 tokens, <|endoftext|>).
#include "tokenize/bpe_trainer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {
namespace {

// Column `column` (0-based) of the first `count` lines of a TSV file (all lines when count < 0).
std::vector<std::string> tsv_column(const std::string& path, int column, int64_t count) {
  std::ifstream file(path);
  std::vector<std::string> out;
  for (std::string line; (count < 0 || int64_t(out.size()) < count) && std::getline(file, line);) {
    std::string cell;
    std::istringstream cells(line);
    for (int i = 0; i <= column; ++i) std::getline(cells, cell, '\t');
    out.push_back(cell);
  }
  return out;
}

std::string train_tsv() { return test::shared_dir() + "/data/bible-en-es/train.tsv"; }

TEST(BpeTrainer, ReproducesHuggingFaceBpe600) {
  const auto lines = tsv_column(train_tsv(), 0, 2000);
  ASSERT_EQ(lines.size(), 2000u);
  const BpeTokenizer trained =
      train_bpe(lines, {.vocab_size = 600, .min_frequency = 2, .special_tokens = {"<pad>"}});

  std::ifstream file(test::shared_dir() + "/fixtures/tokenizers/bpe600.tokenizer.json");
  const nlohmann::json want = nlohmann::json::parse(file);
  ASSERT_EQ(trained.vocab_size(), int32_t(want["model"]["vocab"].size()));
  for (const auto& [token, id] : want["model"]["vocab"].items())
    EXPECT_EQ(trained.token_to_id(token), id.get<int32_t>()) << token;
  const auto merges = trained.merges();
  const auto& want_merges = want["model"]["merges"];
  ASSERT_EQ(merges.size(), want_merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    EXPECT_EQ(merges[i].first, want_merges[i][0].get<std::string>()) << "merge " << i;
    EXPECT_EQ(merges[i].second, want_merges[i][1].get<std::string>()) << "merge " << i;
  }
  // The whole tokenizer.json, options and added tokens included.
  EXPECT_EQ(nlohmann::json::parse(trained.to_json()), want);
}

nlohmann::json model_json(const Tokenizer& tokenizer) {
  nlohmann::json json = nlohmann::json::parse(tokenizer.to_json());
  return {{"model", json["model"]}, {"added_tokens", json["added_tokens"]}};
}

TEST(BpeTrainer, ReproducesTheMtEnEsTokenizer) {
  const auto english = tsv_column(train_tsv(), 0, -1), spanish = tsv_column(train_tsv(), 1, -1);
  std::vector<std::string> texts;
  for (size_t i = 0; i < english.size(); ++i) {
    texts.push_back(english[i]);
    texts.push_back(spanish[i]);
  }
  const BpeTokenizer trained = train_bpe(
      texts, {.vocab_size = 8000, .min_frequency = 2, .special_tokens = {"<pad>", "</s>", "<unk>"}});
  EXPECT_EQ(model_json(trained), model_json(*load_tokenizer(test::shared_dir() + "/models/mt-en-es")));
}

TEST(BpeTrainer, ReproducesTheLmKjvTokenizer) {
  std::ifstream file(test::shared_dir() + "/data/kjv/kjv.txt");
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  const BpeTokenizer trained =
      train_bpe(lines, {.vocab_size = 8000, .min_frequency = 2, .special_tokens = {"<|endoftext|>"}});
  EXPECT_EQ(model_json(trained), model_json(*load_tokenizer(test::shared_dir() + "/models/lm-kjv")));
}

// The merges learned from `lines`, with room for all of them.
std::vector<Merge> merges_of(const std::vector<std::string>& lines, int64_t min_frequency) {
  return train_bpe(lines, {.vocab_size = 1000, .min_frequency = min_frequency, .special_tokens = {"<pad>"}})
      .merges();
}

TEST(BpeTrainer, TiesGoToTheSmallestPairOfIds) {
  // Words "ba" and "Ġab" once each: (a,b), (b,a) and (Ġ,a) all count 1. Ids follow code points, so
  // a < b < Ġ (U+0120): (a,b) first; then (b,a) beats (Ġ,ab), whose left id is larger.
  EXPECT_EQ(merges_of({"ba ab"}, 0), (std::vector<Merge>{{"a", "b"}, {"b", "a"}, {"Ġ", "ab"}}));
}

TEST(BpeTrainer, HighestCountFirstAndMinFrequency) {
  // Words: "ab" 1, "Ġab" 2, "abc" 1. (a,b) counts 4, then (Ġ,ab) 2; (ab,c) counts 1 < 2.
  EXPECT_EQ(merges_of({"ab ab ab", "abc"}, 2), (std::vector<Merge>{{"a", "b"}, {"Ġ", "ab"}}));
  EXPECT_EQ(merges_of({"ab ab ab", "abc"}, 0), (std::vector<Merge>{{"a", "b"}, {"Ġ", "ab"}, {"ab", "c"}}));
}

TEST(BpeTrainer, VocabularyLayout) {
  const BpeTokenizer trained = train_bpe(std::vector<std::string>{"hello hello"},
                                         {.vocab_size = 5, .special_tokens = {"<s>", "</s>", "<s>"}});
  EXPECT_EQ(trained.vocab_size(), 2 + 256);  // the alphabet is always whole; no room for merges
  EXPECT_EQ(trained.id_to_token(0), "<s>");
  EXPECT_EQ(trained.id_to_token(1), "</s>");
  EXPECT_EQ(trained.id_to_token(2), "!");    // the lowest code point of the alphabet
  EXPECT_EQ(trained.id_to_token(257), "Ń");  // the highest (U+0143, byte 0xAD)
  EXPECT_TRUE(trained.merges().empty());
  EXPECT_EQ(trained.encode("<s>hi</s>"),
            (std::vector<int32_t>{0, *trained.token_to_id("h"), *trained.token_to_id("i"), 1}));
}

TEST(BpeTrainer, InvalidUtf8NamesTheLine) {
  const std::string message = test::error_of([] {
    train_bpe(std::vector<std::string>{"fine", "bad \xff here"}, {});
  });
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("byte offset 4"), std::string::npos) << message;
}

}  // namespace
}  // namespace tfm::tokenize
