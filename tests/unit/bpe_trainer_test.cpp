// BPE training against Hugging Face's BpeTrainer: the bpe600 fixture was trained by Hugging Face on
// the English side of the first 2,000 lines of bible-en-es/train.tsv (vocab 600, min frequency 2, "<pad>"
// special); training on the same lines must give the same vocabulary (ids) and merges, in order.
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

}  // namespace
}  // namespace tfm::tokenize
