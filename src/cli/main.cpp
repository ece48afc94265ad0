// tfm: the command-line front end. It only parses arguments and calls the library.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/bleu_command.h"
#include "core/error.h"
#include "infer/translate.h"
#include "train/config.h"
#include "train/trainer.h"

namespace {

using namespace tfm;

int cmd_train(const std::string& config_path, const std::string& out_dir, const std::string& resume_dir,
              int64_t max_steps, bool quiet) {
  train::TrainConfig cfg;
  if (!resume_dir.empty()) {
    if (!config_path.empty()) fail("--resume continues a run with its saved config; do not pass --config");
    cfg = train::load_run_config(resume_dir);
  } else if (!config_path.empty()) {
    cfg = train::load_train_config(config_path);
  }
  if (!out_dir.empty()) cfg.train.out_dir = out_dir;
  train::RunOptions o{resume_dir, max_steps, quiet};
  train::RunSummary s = train::run_training(cfg, o);
  std::fprintf(stderr, "%s after %lld steps: checkpoint %s/checkpoint.safetensors\n",
               s.interrupted ? "interrupted" : "done", static_cast<long long>(s.steps), s.run_dir.c_str());
  return 0;
}

int cmd_translate(const std::string& model_path, int64_t batch, int64_t max_new_tokens) {
  infer::TranslationModel m = infer::load_translation_model(model_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  infer::TranslateOptions o;
  o.batch_size = batch;
  o.max_new_tokens = max_new_tokens;
  infer::TranslateStats stats;
  for (const std::string& out : infer::translate(*m.model, *m.src, *m.tgt, lines, o, &stats))
    std::fwrite((out + "\n").data(), 1, out.size() + 1, stdout);
  if (stats.truncated)
    std::fprintf(stderr, "tfm translate: %lld sentences were longer than the model's maximum and were cut\n",
                 static_cast<long long>(stats.truncated));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tfm: train and run Transformer models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tfm 0.1.0");

  auto* train = app.add_subcommand(
      "train", "Train a model (default: the seed Transformer on the bundled en-es corpus)");
  std::string config_path, out_dir, resume_dir;
  int64_t max_steps = 0;
  bool quiet = false;
  train->add_option("--config", config_path, "TOML or JSON config (keys: docs/config.md)");
  train->add_option("--out", out_dir, "Run folder (overrides train.out_dir)");
  train->add_option("--resume", resume_dir, "Continue the run saved in this folder");
  train->add_option("--max-steps", max_steps,
                    "Stop after this many steps in total (overrides train.max_steps)");
  train->add_flag("--quiet", quiet, "No progress output");

  auto* translate = app.add_subcommand("translate", "Translate stdin (one sentence per line) to stdout");
  std::string model_path;
  int64_t batch = 32, max_new_tokens = 256;
  translate->add_option("--model", model_path, "Run folder or checkpoint file")->required();
  translate->add_option("--batch", batch, "Sentences decoded together")->check(CLI::PositiveNumber);
  translate->add_option("--max-new-tokens", max_new_tokens, "Longest translation in tokens")
      ->check(CLI::PositiveNumber);

  auto* reference =
      app.add_subcommand("config-reference", "Print the reference of every training config key");

  auto* bleu = app.add_subcommand("bleu", "Score translations with BLEU and chrF exactly as sacreBLEU does");
  cli::BleuCommandOptions bleu_options;
  bleu->add_option("--hyp", bleu_options.hyp_path, "Translations, one per line (plain or .gz)")->required();
  bleu->add_option("--ref", bleu_options.ref_paths,
                   "Reference file (plain, TSV or .gz), line-parallel to --hyp; repeat for more references")
      ->required();
  bleu->add_option("--ref-column", bleu_options.ref_column,
                   "Read this tab-separated column (from 1) of each reference line, not the whole line")
      ->check(CLI::PositiveNumber);
  bleu->add_flag("--json", bleu_options.json, "One JSON object instead of sacreBLEU's lines");
  bleu->add_flag("--all", bleu_options.all, "Also WER and CER (torchmetrics' definitions, first reference)");

  CLI11_PARSE(app, argc, argv);
  try {
    if (train->parsed()) return cmd_train(config_path, out_dir, resume_dir, max_steps, quiet);
    if (translate->parsed()) return cmd_translate(model_path, batch, max_new_tokens);
    if (bleu->parsed()) return cli::cmd_bleu(bleu_options);
    if (reference->parsed()) {
      std::fputs(train::config_reference_markdown().c_str(), stdout);
      return 0;
    }
  } catch (const tfm::Error& e) {
    std::fprintf(stderr, "tfm: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tfm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
