// Which tokenizer `tfm train` uses: byte-level BPE by default (trained on the corpus at the first run and
// cached in the run folder), the seed's word-level one on request, or a ready-made tokenizer file; and how
// it reads a corpus line that is not UTF-8.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::run_cli;

// The first n pairs of the shipped training corpus, and a tiny model's config that trains on them.
std::string write_config(const std::string& dir, const std::string& data_keys) {
  std::ifstream in(test::shared_dir() + "/data/bible-en-es/train.tsv");
  std::ofstream out(dir + "/train.tsv");
  std::string line;
  for (int i = 0; i < 200 && std::getline(in, line); ++i) out << line << "\n";
  out.close();
  const std::string path = dir + "/tiny.toml";
  std::ofstream(path)
      << "[model]\nd_model = 32\nheads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 1\n"
         "max_len = 64\n[data]\ntrain = \""
      << dir << "/train.tsv\"\nvalid = \"\"\nmax_tokens = 800\n"
      << data_keys << "[train]\nwarmup_steps = 2\nout_dir = \"" << dir << "/run\"\n";
  return path;
}

std::unique_ptr<tokenize::Tokenizer> checkpoint_source_tokenizer(const std::string& run) {
  const std::string ckpt = run + "/checkpoint.safetensors";
  return tokenize::load_tokenizer_json(io::read_checkpoint_info(ckpt).src_tokenizer, ckpt);
}

TEST(TrainTokenizer, BpeByDefaultTrainedOnceAndCachedInTheRunFolder) {
  const std::string dir = test::temp_dir("bpe-default");
  const std::string config = write_config(dir, "vocab_size = 400\n");
  CliResult first = run_cli("train --config " + config + " --max-steps 1");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.err.find("trained a byte-level BPE tokenizer of 400 tokens"), std::string::npos)
      << first.err;

  const auto cached = tokenize::load_tokenizer(dir + "/run/tokenizer.json");
  EXPECT_EQ(cached->kind(), "BPE");
  EXPECT_EQ(cached->vocab_size(), 400);
  EXPECT_EQ(cached->pad_id(), 0);
  EXPECT_EQ(cached->bos_id(), 1);
  EXPECT_EQ(cached->eos_id(), 2);
  const auto in_checkpoint = checkpoint_source_tokenizer(dir + "/run");
  EXPECT_EQ(in_checkpoint->hash(), cached->hash());
  const std::string verse = "In the beginning, God created the heavens and the earth.";
  EXPECT_EQ(cached->decode(cached->encode(verse)), verse);

  CliResult again = run_cli("train --config " + config + " --max-steps 1");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("reusing the BPE tokenizer " + dir + "/run/tokenizer.json"), std::string::npos)
      << again.err;

  // Other settings mean another tokenizer: retrained, never the stale one.
  CliResult other = run_cli("train --config " + write_config(dir, "vocab_size = 300\n") + " --max-steps 1");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_NE(other.err.find("trained a byte-level BPE tokenizer of 300 tokens"), std::string::npos)
      << other.err;
  EXPECT_EQ(tokenize::load_tokenizer(dir + "/run/tokenizer.json")->vocab_size(), 300);
}

TEST(TrainTokenizer, WordLevelStaysAvailable) {
  const std::string dir = test::temp_dir("word-tokenizer");
  CliResult r = run_cli("train --config " + write_config(dir, "tokenizer = \"word\"\n") + " --max-steps 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(checkpoint_source_tokenizer(dir + "/run")->kind(), "WordLevel");
  EXPECT_FALSE(fs::exists(dir + "/run/tokenizer.json"));
}

TEST(TrainTokenizer, ReadyMadeTokenizerFile) {
  const std::string dir = test::temp_dir("tokenizer-file");
  const std::string config = write_config(dir, "tokenizer_file = \"" + dir + "/own.json\"\n");
  CliResult made = run_cli("train-tokenizer --input " + dir + "/train.tsv --column 1 --vocab-size 350 " +
                           "--special \"<pad>,<s>,</s>\" --out " + dir + "/own.json");
  ASSERT_EQ(made.code, 0) << made.err;
  CliResult r = run_cli("train --config " + config + " --max-steps 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(checkpoint_source_tokenizer(dir + "/run")->hash(),
            tokenize::load_tokenizer(dir + "/own.json")->hash());

  // bpe600 has <pad> only: training cannot frame sequences with it, and says so.
  const std::string bpe600 = test::shared_dir() + "/fixtures/tokenizers/bpe600.tokenizer.json";
  CliResult bad = run_cli("train --config " + write_config(dir, "tokenizer_file = \"" + bpe600 + "\"\n"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find(bpe600 + ": training needs padding, start and end tokens"), std::string::npos)
      << bad.err;
}

// data.invalid_utf8: an ill-formed line stops training with its place named, or is skipped and counted.
TEST(TrainTokenizer, InvalidUtf8LineIsAnErrorOrSkipped) {
  const std::string dir = test::temp_dir("bad-utf8");
  auto config_with_bad_line = [&](const std::string& data_keys) {
    const std::string config = write_config(dir, data_keys);
    std::ofstream(dir + "/train.tsv", std::ios::app) << "bad \xff byte\tmalo\n";  // line 201
    return config;
  };
  CliResult strict = run_cli("train --config " + config_with_bad_line("") + " --max-steps 1");
  EXPECT_NE(strict.code, 0);
  EXPECT_NE(strict.err.find(dir + "/train.tsv:201: invalid UTF-8 at byte offset 4"), std::string::npos)
      << strict.err;

  CliResult skipped =
      run_cli("train --config " + config_with_bad_line("invalid_utf8 = \"skip\"\n") + " --max-steps 1");
  ASSERT_EQ(skipped.code, 0) << skipped.err;
  EXPECT_NE(skipped.err.find("data: 200 pairs from " + dir + "/train.tsv (1 lines skipped)"),
            std::string::npos)
      << skipped.err;
}

}  // namespace
}  // namespace tfm
