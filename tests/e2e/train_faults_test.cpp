// Training under faults, as issue 5 asks: SIGTERM saves a checkpoint and exits cleanly; SIGKILL loses only
// the steps since the last checkpoint and --resume then gives exactly the uninterrupted run; a NaN loss
// stops the run naming the step and the batch and leaves the last checkpoint untouched, or with
// --skip-nonfinite skips those batches; a full disk (a file-size limit) while checkpointing leaves the
// previous checkpoint intact and no temporary file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_support.h"
#include "tokenize/tokenizer.h"

namespace tfm {
namespace {

using test::CliResult;
using test::run_cli;
namespace fs = std::filesystem;

// The first `n` pairs of the shared training corpus, then `extra` lines.
std::string corpus(const std::string& dir, int n, const std::string& extra = "") {
  std::ifstream in(test::shared_dir() + "/data/bible-en-es/train.tsv");
  std::ofstream out(dir + "/train.tsv");
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
  out << extra;
  return dir + "/train.tsv";
}

std::string config(const std::string& dir, const std::string& train, const std::string& extra) {
  std::ofstream(dir + "/run.toml") << "[model]\nd_model = 32\nheads = 2\nd_ff = 64\nencoder_layers = 1\n"
                                      "decoder_layers = 1\nmax_len = 40\n[data]\ntrain = \""
                                   << train << "\"\nvalid = \"\"\nvocab_size = 400\nmax_tokens = 300\n"
                                   << extra << "\n[train]\nlr = 3e-3\nwarmup_steps = 5\nlog_every = 1\n"
                                   << "threads = 1\nout_dir = \"" << dir << "/run\"\n";
  return dir + "/run.toml";
}

std::vector<nlohmann::json> logged(const std::string& run_dir, const char* key) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const nlohmann::json j =
        nlohmann::json::parse(line, nullptr, false);  // a running run's last line may be torn
    if (!j.is_discarded() && j.contains(key)) out.push_back(j);
  }
  return out;
}

// Starts `tfm train` in the background; stderr goes to `err`.
pid_t start(const std::vector<std::string>& args, const std::string& err) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(err.c_str(), "w", stderr)) _exit(127);
    std::vector<char*> argv{const_cast<char*>("tfm")};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(TFM_CLI, argv.data());
    _exit(127);
  }
  return pid;
}

// Waits until `ready()` or 60 s pass.
template <typename Ready>
bool wait_for(Ready ready) {
  for (int i = 0; i < 12000; ++i) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

int64_t checkpoint_step(const std::string& run_dir) {
  return io::read_checkpoint_info(run_dir + "/checkpoint.safetensors").state.step;
}

TEST(TrainFaults, SigtermSavesAndTheRunResumes) {
  const std::string dir = test::temp_dir("sigterm");
  const pid_t pid =
      start({"train", "--config", config(dir, corpus(dir, 300), ""), "--max-steps", "100000"}, dir + "/err");
  ASSERT_TRUE(wait_for([&] { return logged(dir + "/run", "loss").size() >= 3; }));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << io::read_file(dir + "/err");
  const int64_t saved = checkpoint_step(dir + "/run");
  EXPECT_EQ(saved, logged(dir + "/run", "loss").back()["step"].get<int64_t>());
  EXPECT_NE(
      io::read_file(dir + "/err").find("signal 15: saving a checkpoint at step " + std::to_string(saved)),
      std::string::npos);
  const CliResult r =
      run_cli("train --resume " + dir + "/run --max-steps " + std::to_string(saved + 3) + " --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(checkpoint_step(dir + "/run"), saved + 3);
}

TEST(TrainFaults, SigkillLosesOnlyStepsSinceTheCheckpoint) {
  const std::string a = test::temp_dir("sigkill-a"), b = test::temp_dir("sigkill-b");
  const std::string extra = "";
  ASSERT_EQ(run_cli("train --config " + config(a, corpus(a, 300), extra) + " --max-steps 30 --quiet").code,
            0);
  // checkpoint_every 5: killed somewhere after step 12, the checkpoint holds step 10 (or later).
  std::ofstream(config(b, corpus(b, 300), extra), std::ios::app) << "checkpoint_every = 5\n";
  const pid_t pid = start({"train", "--config", b + "/run.toml", "--max-steps", "30"}, b + "/err");
  ASSERT_TRUE(wait_for([&] { return logged(b + "/run", "loss").size() >= 12; }));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";
  const int64_t saved = checkpoint_step(b + "/run");
  EXPECT_GE(saved, 10);
  EXPECT_LT(saved, 30);
  EXPECT_EQ(saved % 5, 0);
  const CliResult r = run_cli("train --resume " + b + "/run --max-steps 30 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  // Every step logged once, and the same losses as the run that was never killed.
  const std::vector<nlohmann::json> la = logged(a + "/run", "loss"), lb = logged(b + "/run", "loss");
  ASSERT_EQ(lb.size(), 30u);
  for (size_t i = 0; i < lb.size(); ++i) {
    EXPECT_EQ(lb[i]["step"], int64_t(i + 1));
    EXPECT_EQ(lb[i]["loss"], la[i]["loss"]) << "step " << i + 1;
  }
}

// A checkpoint whose embedding of one source word (in one training pair only) is NaN: every batch holding
// that pair has a NaN loss, the others are finite.
std::string poisoned_run(const std::string& dir) {
  const std::string train = corpus(dir, 80, "Zzyzx spoke.\tZzyzx habló.\n");
  const std::string cfg = config(dir, train, "tokenizer = \"word\"\nmin_freq = 1");
  EXPECT_EQ(run_cli("train --config " + cfg + " --max-steps 2 --quiet").code, 0);
  const std::string ckpt = dir + "/run/checkpoint.safetensors";
  const io::CheckpointInfo info = io::read_checkpoint_info(ckpt);
  const int32_t id = *tokenize::load_tokenizer_json(info.src_tokenizer, ckpt)->token_to_id("Zzyzx");
  const io::SafetensorsFile file = io::SafetensorsFile::open(ckpt);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : file.names()) {
    Tensor t = file.get_f32(name);
    if (name == "model.encoder.embed_tokens.weight")
      for (int64_t j = 0; j < t.size(1); ++j)
        t.f32()[id * t.size(1) + j] = std::numeric_limits<float>::quiet_NaN();
    tensors.emplace_back(name, t);
  }
  io::save_safetensors(ckpt, tensors, file.metadata());
  return ckpt;
}

TEST(TrainFaults, NanLossStopsNamingTheBatchAndKeepsTheCheckpoint) {
  const std::string dir = test::temp_dir("nan");
  const std::string ckpt = poisoned_run(dir);
  const std::string before = io::read_file(ckpt);
  const CliResult r = run_cli("train --resume " + dir + "/run --max-steps 40 --quiet");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("loss is nan on batch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("corpus lines"), std::string::npos) << r.err;
  EXPECT_EQ(io::read_file(ckpt), before) << "the last good checkpoint changed";

  const CliResult s = run_cli("train --resume " + dir + "/run --max-steps 40 --quiet --skip-nonfinite");
  ASSERT_EQ(s.code, 0) << s.err;
  const std::vector<nlohmann::json> skipped = logged(dir + "/run", "skipped_nonfinite");
  EXPECT_GE(skipped.size(), 1u);
  EXPECT_NE(s.err.find("batches skipped"), std::string::npos) << s.err;
  EXPECT_EQ(checkpoint_step(dir + "/run"), 40);
  for (const nlohmann::json& j : logged(dir + "/run", "loss"))
    EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
}

TEST(TrainFaults, FullDiskWhileCheckpointingKeepsThePreviousCheckpoint) {
  const std::string dir = test::temp_dir("fulldisk");
  ASSERT_EQ(run_cli("train --config " + config(dir, corpus(dir, 100), "") + " --max-steps 3 --quiet").code,
            0);
  const std::string ckpt = dir + "/run/checkpoint.safetensors";
  const std::string before = io::read_file(ckpt);
  // No file may grow past half the checkpoint's size: writing the next one fails (EFBIG, with SIGXFSZ
  // ignored as a full disk's ENOSPC would).
  const std::string command = "bash -c \"trap '' XFSZ; ulimit -f " + std::to_string(before.size() / 2048) +
                              "; exec " + TFM_CLI + " train --resume " + dir +
                              "/run --max-steps 6 --quiet\" 2>" + dir + "/err";
  const int status = std::system(command.c_str());
  EXPECT_NE(status, 0);
  const std::string err = io::read_file(dir + "/err");
  EXPECT_NE(err.find("checkpoint.safetensors"), std::string::npos) << err;
  EXPECT_EQ(io::read_file(ckpt), before) << "the previous checkpoint changed";
  for (const auto& e : fs::directory_iterator(dir + "/run"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_EQ(checkpoint_step(dir + "/run"), 3);
}

}  // namespace
}  // namespace tfm
