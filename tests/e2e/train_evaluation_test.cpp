// Issue 5's evaluation during training, against the CLI's own translate and bleu commands: the validation
// BLEU / chrF in metrics.jsonl are what `tfm bleu` gives for `tfm translate` of the validation sources by
// the same model; best.safetensors is the model of the evaluation with the highest BLEU; the final test
// translation comes from it, with the beams asked for; early stopping stops after `patience` evaluations
// without improvement.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_runner.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "test_support.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;

// The first `n` pairs of a shared corpus.
std::string pairs(const std::string& dir, const std::string& name, const std::string& from, int n) {
  std::ifstream in(test::shared_dir() + "/data/bible-en-es/" + from);
  std::ofstream out(dir + "/" + name);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
  return dir + "/" + name;
}

std::string config(const std::string& dir, const std::string& train_extra, const std::string& lr = "3e-3") {
  const std::string path = dir + "/run.toml";
  std::ofstream(path)
      << "[model]\nd_model = 32\nheads = 2\nd_ff = 64\nencoder_layers = 1\ndecoder_layers = 1\n"
         "max_len = 40\n[data]\ntrain = \""
      << pairs(dir, "train.tsv", "train.tsv", 400) << "\"\nvalid = \""
      << pairs(dir, "valid.tsv", "valid.tsv", 24) << "\"\ntest = \"" << pairs(dir, "test.tsv", "test.tsv", 20)
      << "\"\nvocab_size = 400\nmax_tokens = 600\nvalid_samples = 0\n[train]\nlr = " << lr
      << "\nwarmup_steps = 5\nmax_steps = 40\nlog_every = 10\neval_every = 10\n"
         "checkpoint_every = 100\nthreads = 2\nout_dir = \""
      << dir << "/run\"\n"
      << train_extra;
  return path;
}

std::vector<nlohmann::json> lines_with(const std::string& run_dir, const char* key) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains(key)) out.push_back(j);
  }
  return out;
}

// `tfm bleu --json` of a hypothesis file against a TSV's second column.
nlohmann::json bleu_of(const std::string& hyp, const std::string& tsv) {
  const CliResult r = run_cli("bleu --json --hyp " + hyp + " --ref " + tsv + " --ref-column 2");
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(TrainEvaluation, BleuBestCheckpointAndTestAgreeWithTheCli) {
  const std::string dir = test::temp_dir("train-eval");
  const CliResult r = run_cli("train --config " + config(dir, "test_beam = 2\n"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string run = dir + "/run";
  const std::vector<nlohmann::json> evals = lines_with(run, "valid_bleu");
  ASSERT_EQ(evals.size(), 4u);
  size_t best = 0;
  for (size_t i = 0; i < evals.size(); ++i)
    if (evals[i]["valid_bleu"].get<double>() > evals[best]["valid_bleu"].get<double>()) best = i;
  const int64_t best_step = evals[best]["step"].get<int64_t>();
  EXPECT_EQ(io::read_checkpoint_info(run + "/best.safetensors").state.step, best_step);

  // The best model's validation translations, through the CLI, score what the trainer logged.
  std::string sources;
  {
    std::ifstream in(dir + "/valid.tsv");
    for (std::string line; std::getline(in, line);) sources += line.substr(0, line.find('\t')) + "\n";
  }
  const CliResult t = run_cli("translate --model " + run + "/best.safetensors", sources);
  ASSERT_EQ(t.code, 0) << t.err;
  std::ofstream(dir + "/valid.hyp") << t.out;
  const nlohmann::json valid = bleu_of(dir + "/valid.hyp", dir + "/valid.tsv");
  EXPECT_NEAR(valid["bleu"].get<double>(), evals[best]["valid_bleu"].get<double>(), 1e-9);
  EXPECT_NEAR(valid["chrf"].get<double>(), evals[best]["valid_chrf"].get<double>(),
              0.005);  // JSON: 2 decimals

  // The final test translation: best model, 2 beams, scored as `tfm bleu` scores test.hyp.
  const std::vector<nlohmann::json> tests = lines_with(run, "test_bleu");
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_EQ(tests[0]["test_step"], best_step);
  EXPECT_EQ(tests[0]["test_beam"], 2);
  const nlohmann::json test = bleu_of(run + "/test.hyp", dir + "/test.tsv");
  EXPECT_NEAR(test["bleu"].get<double>(), tests[0]["test_bleu"].get<double>(), 1e-9);
  EXPECT_NEAR(test["chrf"].get<double>(), tests[0]["test_chrf"].get<double>(), 0.005);
  std::string test_sources;
  {
    std::ifstream in(dir + "/test.tsv");
    for (std::string line; std::getline(in, line);) test_sources += line.substr(0, line.find('\t')) + "\n";
  }
  const CliResult beam = run_cli("translate --beam 2 --model " + run + "/best.safetensors", test_sources);
  ASSERT_EQ(beam.code, 0) << beam.err;
  EXPECT_EQ(beam.out, io::read_file(run + "/test.hyp"));
  EXPECT_NE(r.err.find("test  " + dir + "/test.tsv (2 beams"), std::string::npos) << r.err;
}

TEST(TrainEvaluation, EarlyStoppingAfterPatienceEvaluationsWithoutProgress) {
  const std::string dir = test::temp_dir("train-early");
  // A learning rate too small to change greedy translations: validation loss still falls a little, BLEU
  // stays where it starts, so the second evaluation without a better BLEU stops the run.
  const CliResult r =
      run_cli("train --config " + config(dir, "best_metric = \"bleu\"\nearly_stopping = 2\n", "1e-9"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<nlohmann::json> evals = lines_with(dir + "/run", "valid_bleu");
  ASSERT_EQ(evals.size(), 3u) << "best at 10, then 2 evaluations without a better BLEU";
  EXPECT_EQ(evals[1]["valid_bleu"], evals[0]["valid_bleu"]);
  EXPECT_NE(r.err.find("early stopping: no better bleu for 2 evaluations (best at step 10)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(io::read_checkpoint_info(dir + "/run/checkpoint.safetensors").state.step, 30);
}

// recipes/mt-en-es.toml shrunk (sizes, steps and corpora replaced, the architecture and optimizer kept):
// the benchmark recipe itself runs end to end in CI and its loss falls.
// Both translation recipes (the reference model's and the seed architecture's), shrunk, train and test.
class RecipeShrunk : public ::testing::TestWithParam<const char*> {};

TEST_P(RecipeShrunk, TrainsAndTests) {
  const std::string name = GetParam();
  const std::string dir = test::temp_dir("recipe");
  std::string recipe = io::read_file(std::string(TFM_SOURCE_DIR) + "/recipes/" + name + ".toml");
  const std::vector<std::pair<std::string, std::string>> shrink = {
      {"d_model = 256", "d_model = 32"},
      {"d_ff = 1024", "d_ff = 64"},
      {"encoder_layers = 3", "encoder_layers = 1"},
      {"decoder_layers = 3", "decoder_layers = 1"},
      {"max_len = 256", "max_len = 40"},
      {"vocab_size = 8000", "vocab_size = 400"},
      {"max_tokens = 8300", "max_tokens = 600"},
      {"warmup_steps = 1000", "warmup_steps = 10"},
      {"max_steps = 2100", "max_steps = 40"},
      {"log_every = 50", "log_every = 1"},
      {"eval_every = 300", "eval_every = 20"},
      {"checkpoint_every = 300", "checkpoint_every = 20"},
      {"data/bible-en-es/train.tsv.gz", pairs(dir, "train.tsv", "train.tsv", 400)},
      {"data/bible-en-es/valid.tsv.gz", pairs(dir, "valid.tsv", "valid.tsv", 16)},
      {"data/bible-en-es/test.tsv.gz", pairs(dir, "test.tsv", "test.tsv", 16)},
      {"out_dir = \"runs/" + name + "\"", "out_dir = \"" + dir + "/run\""}};
  for (const auto& [from, to] : shrink) {
    const size_t at = recipe.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    recipe.replace(at, from.size(), to);
  }
  std::ofstream(dir + "/recipe.toml") << recipe << "threads = 2\n";
  const CliResult r = run_cli("train --config " + dir + "/recipe.toml --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<nlohmann::json> losses = lines_with(dir + "/run", "loss");
  ASSERT_EQ(losses.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i)
    first += losses[size_t(i)]["loss"].get<double>() / 5,
        last += losses[35 + size_t(i)]["loss"].get<double>() / 5;
  EXPECT_LT(last, first - 0.5) << first << " -> " << last;
  EXPECT_EQ(lines_with(dir + "/run", "test_bleu").size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(TrainEvaluation, RecipeShrunk, ::testing::Values("mt-en-es", "mt-en-es-seed"),
                         [](const auto& info) {
                           return std::string(info.param) == "mt-en-es" ? "Marian" : "Seed";
                         });

}  // namespace
}  // namespace tfm
