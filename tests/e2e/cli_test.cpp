// The tfm command line end to end on tiny data: training lowers the loss, an interrupted run resumed
// from its checkpoint is bit-identical to an uninterrupted one, translation writes one line per input,
// and bad input fails with a message naming the file and line and leaves no partial file behind;
// `tfm bleu` prints what sacreBLEU printed for the shipped translations.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace tfm {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::run_cli;

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// The first `n` lines of the shared training corpus, and a validation file.
std::string tiny_corpus(const std::string& dir, int n) {
  std::ifstream in(test::shared_dir() + "/data/bible-en-es/train.tsv");
  std::ofstream out(dir + "/train.tsv");
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
  return dir + "/train.tsv";
}

std::string tiny_config(const std::string& dir, const std::string& train, const std::string& extra = "") {
  std::string path = dir + "/tiny.toml";
  write(path,
        "[model]\nd_model = 32\nheads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 1\nmax_len = 40\n"
        "[data]\ntrain = \"" +
            train + "\"\nvalid = \"" + train +
            "\"\nvalid_max_pairs = 16\nmax_tokens = 600\n"
            "valid_samples = 1\n[train]\nlr = 3e-3\nwarmup_steps = 5\nmax_steps = 20\nlog_every = 1\n"
            "eval_every = 10\ncheckpoint_every = 10\nthreads = 2\nout_dir = \"" +
            dir + "/run\"\n" + extra);
  return path;
}

std::vector<double> logged_losses(const std::string& run_dir) {
  std::vector<double> out;
  std::ifstream f(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

TEST(Cli, TrainLowersLossAndTranslates) {
  std::string dir = test::temp_dir("train");
  std::string cfg = tiny_config(dir, tiny_corpus(dir, 400));
  CliResult r = run_cli("train --config " + cfg + " --max-steps 40");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<double> losses = logged_losses(dir + "/run");
  ASSERT_EQ(losses.size(), 40u);
  double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[37] + losses[38] + losses[39]) / 3;
  EXPECT_LT(last, first - 0.5) << "the loss did not fall: " << first << " -> " << last;
  EXPECT_NE(r.err.find("valid"), std::string::npos) << "no validation line: " << r.err;
  CliResult t = run_cli("translate --model " + dir + "/run", "In the beginning.\n\nAnd God said.\n");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 3) << t.out;
  EXPECT_TRUE(t.out.find("\n\n") != std::string::npos) << "the empty line must stay empty: " << t.out;
}

TEST(Cli, ResumeIsBitIdentical) {
  std::string a = test::temp_dir("resume-a"), b = test::temp_dir("resume-b");
  CliResult ra = run_cli("train --config " + tiny_config(a, tiny_corpus(a, 300)) + " --max-steps 20 --quiet");
  ASSERT_EQ(ra.code, 0) << ra.err;
  CliResult rb1 =
      run_cli("train --config " + tiny_config(b, tiny_corpus(b, 300)) + " --max-steps 10 --quiet");
  ASSERT_EQ(rb1.code, 0) << rb1.err;
  CliResult rb2 = run_cli("train --resume " + b + "/run --max-steps 20 --quiet");
  ASSERT_EQ(rb2.code, 0) << rb2.err;
  std::vector<double> la = logged_losses(a + "/run"), lb = logged_losses(b + "/run");
  ASSERT_EQ(la.size(), 20u);
  ASSERT_EQ(lb.size(), 20u);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_EQ(la[i], lb[i]) << "step " << i + 1;
  auto fa = io::SafetensorsFile::open(a + "/run/checkpoint.safetensors");
  auto fb = io::SafetensorsFile::open(b + "/run/checkpoint.safetensors");
  ASSERT_EQ(fa.names(), fb.names());
  for (const std::string& n : fa.names()) {
    Tensor x = fa.view(n), y = fb.view(n);
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << "tensor " << n << " differs after resume";
  }
}

TEST(Cli, TsvLineWithoutTabNamesFileAndLine) {
  std::string dir = test::temp_dir("notab");
  write(dir + "/bad.tsv", "hello\thola\nno tab here\n");
  CliResult r = run_cli("train --config " + tiny_config(dir, dir + "/bad.tsv") + " --quiet");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(dir + "/bad.tsv:2"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoint.safetensors"));
}

TEST(Cli, EmptyCorpusIsAnError) {
  std::string dir = test::temp_dir("empty");
  write(dir + "/empty.tsv", "");
  CliResult r = run_cli("train --config " + tiny_config(dir, dir + "/empty.tsv") + " --quiet");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("empty.tsv"), std::string::npos) << r.err;
}

TEST(Cli, UnknownConfigKeyListsValidKeys) {
  std::string dir = test::temp_dir("key");
  std::string cfg = tiny_config(dir, tiny_corpus(dir, 10), "lernrate = 3\n");
  CliResult r = run_cli("train --config " + cfg);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("lernrate"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("warmup_steps"), std::string::npos) << "valid keys should be listed: " << r.err;
  EXPECT_NE(r.err.find("tiny.toml"), std::string::npos) << r.err;
}

// The count of pairs skipped for length, from the run's log line "skipped N pairs longer than max_len".
int64_t skipped_for_length(const std::string& log) {
  size_t at = log.find("skipped ");
  return at == std::string::npos ? 0 : std::stoll(log.substr(at + 8));
}

TEST(Cli, TooLongSentencesAreSkippedAndCounted) {
  std::string dir = test::temp_dir("long");
  std::string train = tiny_corpus(dir, 50);
  CliResult before = run_cli("train --config " + tiny_config(dir, train) + " --max-steps 1");
  ASSERT_EQ(before.code, 0) << before.err;
  std::string long_line = "In";
  for (int i = 0; i < 60; ++i) long_line += " the";
  std::ofstream(train, std::ios::app) << long_line << "\tcorto\n";
  CliResult after = run_cli("train --config " + tiny_config(dir, train) + " --max-steps 1");
  ASSERT_EQ(after.code, 0) << after.err;
  EXPECT_EQ(skipped_for_length(after.err), skipped_for_length(before.err) + 1) << after.err;
}

TEST(Cli, TruncatedCheckpointIsAClearError) {
  std::string dir = test::temp_dir("trunc");
  ASSERT_EQ(
      run_cli("train --config " + tiny_config(dir, tiny_corpus(dir, 50)) + " --max-steps 2 --quiet").code, 0);
  std::string ckpt = dir + "/run/checkpoint.safetensors";
  fs::resize_file(ckpt, fs::file_size(ckpt) / 2);
  CliResult r = run_cli("translate --model " + ckpt, "hello\n");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("checkpoint.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(Cli, NoTemporaryFilesLeftBehind) {
  std::string dir = test::temp_dir("tmpfiles");
  ASSERT_EQ(
      run_cli("train --config " + tiny_config(dir, tiny_corpus(dir, 50)) + " --max-steps 12 --quiet").code,
      0);
  for (const auto& e : fs::directory_iterator(dir + "/run"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

// The sacreBLEU results stored beside the shipped translations (models/mt-en-es/scores.json).
nlohmann::json shipped_scores() {
  return nlohmann::json::parse(io::read_file(test::shared_dir() + "/models/mt-en-es/scores.json"));
}

TEST(Cli, BleuPrintsSacreBleuLines) {
  const std::string models = test::shared_dir() + "/models/mt-en-es";
  const nlohmann::json scores = shipped_scores();
  ASSERT_GE(scores.size(), 2u);
  for (const auto& [system, expected] : scores.items()) {
    CliResult r = run_cli("bleu --hyp " + models + "/" + system + ".es --ref " + test::shared_dir() +
                          "/data/bible-en-es/test.tsv --ref-column 2");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, expected["sacrebleu"].get<std::string>() + "\n" +
                         fmt::format("chrF2 = {:.2f}\n", expected["chrf"].get<double>()))
        << system;
  }
}

TEST(Cli, BleuJsonFromGzipReference) {
  const std::string dir = test::temp_dir("bleu-gz");
  const std::string tsv = io::read_file(test::shared_dir() + "/data/bible-en-es/test.tsv");
  gzFile gz = gzopen((dir + "/test.tsv.gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, tsv.data(), unsigned(tsv.size())), int(tsv.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
  CliResult r = run_cli("bleu --json --all --hyp " + test::shared_dir() +
                        "/models/mt-en-es/test.beam4.es --ref " + dir + "/test.tsv.gz --ref-column 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json got = nlohmann::json::parse(r.out), want = shipped_scores()["test.beam4"];
  EXPECT_EQ(got["bleu"].get<double>(), want["bleu"].get<double>());
  EXPECT_EQ(got["chrf"].get<double>(), want["chrf"].get<double>());
  EXPECT_EQ(got["bleu_line"], want["sacrebleu"]);
  EXPECT_EQ(got["hyp_len"].get<int64_t>(), 16257);
  EXPECT_EQ(got["ref_len"].get<int64_t>(), 16244);
  EXPECT_EQ(got["precisions"].size(), 4u);
  EXPECT_NEAR(got["ratio"].get<double>(), 16257.0 / 16244.0, 1e-12);
  for (const char* rate : {"wer", "cer"}) {
    EXPECT_GT(got[rate].get<double>(), 0.0) << rate;
    EXPECT_LT(got[rate].get<double>(), 1.0) << rate;
  }
}

TEST(Cli, BleuLineCountMismatchNamesBothFiles) {
  const std::string dir = test::temp_dir("bleu-mismatch");
  write(dir + "/hyp.txt", "uno\ndos\ntres\n");
  const std::string ref = test::shared_dir() + "/data/bible-en-es/test.tsv";
  CliResult r = run_cli("bleu --hyp " + dir + "/hyp.txt --ref " + ref + " --ref-column 2");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(dir + "/hyp.txt has 3 lines but " + ref + " has 617"), std::string::npos) << r.err;
}

TEST(Cli, TokenCacheIsReusedOnResumeAndRebuiltWhenTheCorpusChanges) {
  std::string dir = test::temp_dir("token-cache");
  const std::string corpus = tiny_corpus(dir, 50);
  CliResult first = run_cli("train --config " + tiny_config(dir, corpus) + " --max-steps 2");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.err.find("data: tokenized " + corpus + " into " + dir + "/run/train.tokens"),
            std::string::npos)
      << first.err;
  EXPECT_TRUE(fs::exists(dir + "/run/valid.tokens"));
  CliResult resumed = run_cli("train --resume " + dir + "/run --max-steps 3");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("data: reusing " + dir + "/run/train.tokens"), std::string::npos) << resumed.err;
  fs::last_write_time(corpus, fs::last_write_time(corpus) + std::chrono::seconds(1));
  CliResult touched = run_cli("train --resume " + dir + "/run --max-steps 4");
  ASSERT_EQ(touched.code, 0) << touched.err;
  EXPECT_NE(touched.err.find("(stale: " + corpus + " changed"), std::string::npos) << touched.err;
}

}  // namespace
}  // namespace tfm
