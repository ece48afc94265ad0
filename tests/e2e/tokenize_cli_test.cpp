// `tfm tokenize` and `tfm train-tokenizer` end to end: the CLI's ids are the library's, --decode inverts
// them, training on the bpe600 fixture's corpus writes Hugging Face's tokenizer.json, and bad input fails
// with a message naming the line.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "io/atomic_file.h"
#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;

std::string mt_en_es() { return test::shared_dir() + "/models/mt-en-es"; }

TEST(TokenizeCli, EncodesLikeTheLibraryAndDecodesBack) {
  const std::string text = "In the beginning, God created the heavens.\n“¿Dónde está?” 😀\n\nline </s> end\n";
  const CliResult encoded = run_cli("tokenize --tokenizer " + mt_en_es(), text);
  ASSERT_EQ(encoded.code, 0) << encoded.err;
  const auto tokenizer = tokenize::load_tokenizer(mt_en_es());
  std::istringstream in(text), out(encoded.out);
  for (std::string line, ids; std::getline(in, line);) {
    ASSERT_TRUE(std::getline(out, ids));
    std::string want;
    for (int32_t id : tokenizer->encode(line)) {
      if (!want.empty()) want += ' ';
      want += std::to_string(id);
    }
    EXPECT_EQ(ids, want) << line;
  }
  const CliResult decoded = run_cli("tokenize --decode --tokenizer " + mt_en_es(), encoded.out);
  ASSERT_EQ(decoded.code, 0) << decoded.err;
  EXPECT_EQ(
      decoded.out,
      "In the beginning, God created the heavens.\n“¿Dónde está?” 😀\n\nline  end\n");  // </s> is special

  const CliResult tokens = run_cli(
      "tokenize --tokens --tokenizer " + test::shared_dir() + "/fixtures/tokenizers/gpt2/encoder.json",
      "Hello world\n");
  EXPECT_EQ(tokens.out, "Hello Ġworld\n");
}

TEST(TokenizeCli, BadIdsNameTheLine) {
  CliResult r = run_cli("tokenize --decode --tokenizer " + mt_en_es(), "1 2\n3 x4\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("stdin line 2: 'x4' is not a token id"), std::string::npos) << r.err;
  r = run_cli("tokenize --decode --tokenizer " + mt_en_es(), "8000\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("stdin line 1: token id 8000 is outside"), std::string::npos) << r.err;
  r = run_cli("tokenize --tokenizer " + mt_en_es(), "fine\nbad \xff\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("stdin line 2: cannot encode: invalid UTF-8 at byte offset 4"), std::string::npos)
      << r.err;
}

TEST(TokenizeCli, TrainTokenizerWritesHuggingFacesBpe600) {
  // The bpe600 fixture: Hugging Face trained on the English side of the first 2,000 lines of train.tsv.
  const std::string dir = test::temp_dir("train_tokenizer");
  {
    std::ifstream in(test::shared_dir() + "/data/bible-en-es/train.tsv");
    std::ofstream head(dir + "/head.tsv");
    std::string line;
    for (int i = 0; i < 2000 && std::getline(in, line); ++i) head << line << "\n";
  }
  const CliResult r = run_cli("train-tokenizer --input " + dir + "/head.tsv --column 1 --vocab-size 600 " +
                              "--min-frequency 2 --special '<pad>' --out " + dir + "/tokenizer.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(io::read_file(dir + "/tokenizer.json")),
            nlohmann::json::parse(
                io::read_file(test::shared_dir() + "/fixtures/tokenizers/bpe600.tokenizer.json")));
  const CliResult encoded = run_cli("tokenize --tokenizer " + dir, "Hello world\n");
  EXPECT_EQ(encoded.out, "360 278 79 263 290 317\n");  // bpe600_cases.json, first case

  const CliResult bad = run_cli("train-tokenizer --input " + dir +
                                "/head.tsv --column 3 --vocab-size 600 --out " + dir + "/other.json");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find(dir + "/head.tsv:1: no column 3"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::ifstream(dir + "/other.json").good());
}

}  // namespace
}  // namespace tfm
