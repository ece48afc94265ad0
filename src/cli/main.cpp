// tfm: the command-line front end. It only parses arguments and calls the library.
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "cli/bleu_command.h"
#include "cli/lm_commands.h"
#include "cli/serve_command.h"
#include "cli/view_commands.h"
#include "core/error.h"
#include "dist/communicator.h"
#include "infer/translate.h"
#include "io/atomic_file.h"
#include "tokenize/bpe_trainer.h"
#include "tokenize/tokenizer.h"
#include "tokenize/training_text.h"
#include "train/config.h"
#include "train/trainer.h"

namespace {

using namespace tfm;

// " (N batches skipped, M float16 overflows skipped)" or "".
std::string skipped_steps(const train::RunSummary& s) {
  std::vector<std::string> parts;
  if (s.skipped_nonfinite) parts.push_back(fmt::format("{} batches skipped", s.skipped_nonfinite));
  if (s.skipped_overflow) parts.push_back(fmt::format("{} float16 overflows skipped", s.skipped_overflow));
  return parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", "));
}

// Command-line settings that override the config's.
struct TrainOverrides {
  std::string out_dir, lora, init_from;
};

int cmd_train(const std::string& config_path, const TrainOverrides& over, train::RunOptions o) {
  train::TrainConfig cfg;
  if (!o.resume_dir.empty()) {
    if (!config_path.empty()) fail("--resume continues a run with its saved config; do not pass --config");
    if (!over.lora.empty() || !over.init_from.empty())
      fail("--resume continues a run with its saved config; do not pass --lora or --init-from");
    cfg = train::load_run_config(o.resume_dir);
  } else if (!config_path.empty()) {
    cfg = train::load_train_config(config_path);
  }
  if (!over.out_dir.empty()) cfg.train.out_dir = over.out_dir;
  if (!over.lora.empty()) cfg.train.lora = over.lora;
  if (!over.init_from.empty()) cfg.train.init_from = over.init_from;
  // Under mpirun, one rank of a data-parallel run: an error on any rank ends them all at once (MPI_Abort),
  // rather than leaving the others to time out.
  dist::Communicator& world = dist::world();
  o.comm = &world;
  train::RunSummary s;
  try {
    s = train::run_training(cfg, o);
  } catch (const std::exception& e) {
    if (world.size() == 1) throw;
    std::fprintf(stderr, "tfm: error on rank %d of %d: %s\n", world.rank(), world.size(), e.what());
    std::fflush(stderr);
    world.abort(1);
  }
  if (world.rank() != 0) return 0;
  std::fprintf(stderr, "%s after %lld steps%s: checkpoint %s/checkpoint.safetensors\n",
               s.interrupted ? "interrupted" : "done", static_cast<long long>(s.steps),
               skipped_steps(s).c_str(), s.run_dir.c_str());
  return 0;
}

int cmd_translate(const std::string& model_path, infer::TranslateOptions o) {
  infer::TranslationModel m = infer::load_translation_model(model_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  o.add_bos_eos = !m.tokenizer_frames_source;
  infer::TranslateStats stats;
  for (const std::string& out : infer::translate(*m.model, *m.src, *m.tgt, lines, o, &stats))
    std::fwrite((out + "\n").data(), 1, out.size() + 1, stdout);
  if (stats.truncated)
    std::fprintf(stderr, "tfm translate: %lld sentences were longer than the model's maximum and were cut\n",
                 static_cast<long long>(stats.truncated));
  return 0;
}

// The ids of one line of `tfm tokenize --decode` input ("12 7 1").
std::vector<int32_t> parse_ids(std::string_view line) {
  std::vector<int32_t> ids;
  size_t pos = line.find_first_not_of(" \t");
  while (pos != std::string_view::npos) {
    const size_t end = std::min(line.find_first_of(" \t", pos), line.size());
    const std::string_view word = line.substr(pos, end - pos);
    int32_t id = 0;
    auto [ptr, error] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (error != std::errc() || ptr != word.data() + word.size()) fail("'{}' is not a token id", word);
    ids.push_back(id);
    pos = line.find_first_not_of(" \t", end);
  }
  return ids;
}

// stdin lines -> one line of ids (or token strings, or with --decode text from ids) each.
int cmd_tokenize(const std::string& tokenizer_path, bool decode, bool as_tokens) {
  const auto tokenizer = tokenize::load_tokenizer(tokenizer_path);
  std::string out;
  int64_t number = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    with_context(fmt::format("stdin line {}", number), [&] {
      out.clear();
      if (decode) {
        out = tokenizer->decode(parse_ids(line));
      } else {
        for (int32_t id : tokenizer->encode(line)) {
          if (!out.empty()) out += ' ';
          out += as_tokens ? *tokenizer->id_to_token(id) : std::to_string(id);
        }
      }
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
    });
  }
  return 0;
}

int cmd_train_tokenizer(const std::vector<std::string>& inputs, int column,
                        const tokenize::BpeTrainOptions& options, const std::string& out_path) {
  const std::vector<std::string> texts = tokenize::read_training_text(inputs, column);
  if (texts.empty()) fail("no training text in {}", fmt::join(inputs, ", "));
  const tokenize::BpeTokenizer tokenizer = tokenize::train_bpe(texts, options);
  io::write_file_atomic(out_path, tokenizer.to_json());
  std::fprintf(stderr, "%d tokens (%zu merges) from %zu lines: %s\n", tokenizer.vocab_size(),
               tokenizer.merges().size(), texts.size(), out_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tfm: train and run Transformer models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tfm 0.1.0");

  auto* train = app.add_subcommand(
      "train", "Train a model (default: the seed Transformer on the bundled en-es corpus)");
  std::string config_path;
  TrainOverrides overrides;
  train::RunOptions run_options;
  train->add_option("--config", config_path, "TOML or JSON config (keys: docs/config.md)");
  train->add_option("--out", overrides.out_dir, "Run folder (overrides train.out_dir)");
  train->add_option("--init-from", overrides.init_from,
                    "Fine-tune this model: a Hugging Face folder or a tfm run (overrides train.init_from)");
  train->add_option(
      "--lora", overrides.lora,
      "Train LoRA adapters only, e.g. r=8,alpha=16,dropout=0.05,targets=q,v (overrides train.lora)");
  train->add_option("--resume", run_options.resume_dir, "Continue the run saved in this folder");
  train->add_option("--max-steps", run_options.max_steps,
                    "Stop after this many steps in total (overrides train.max_steps)");
  train->add_flag("--quiet", run_options.quiet, "No progress output");
  train->add_flag("--skip-nonfinite", run_options.skip_nonfinite,
                  "Skip a batch whose loss or gradient is NaN or infinite instead of stopping");

  auto* translate = app.add_subcommand("translate", "Translate stdin (one sentence per line) to stdout");
  std::string model_path;
  infer::TranslateOptions translate_options;  // its defaults are the flags' defaults
  translate->add_option("--model", model_path, "Run folder or checkpoint file")->required();
  translate->add_option("--batch", translate_options.batch_size, "Sentences decoded together")
      ->check(CLI::PositiveNumber);
  translate->add_option("--beam", translate_options.beams, "Beam size (1: greedy)")
      ->check(CLI::PositiveNumber);
  translate
      ->add_option(
          "--early-stopping", translate_options.early_stopping,
          "Beam search stops a sentence: when-full (HF early_stopping=True), heuristic (False), never")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, infer::EarlyStopping>{{"when-full", infer::EarlyStopping::kWhenFull},
                                                      {"heuristic", infer::EarlyStopping::kHeuristic},
                                                      {"never", infer::EarlyStopping::kNever}}));
  translate->add_option("--max-new-tokens", translate_options.max_new_tokens, "Longest translation in tokens")
      ->check(CLI::PositiveNumber);

  auto* generate =
      app.add_subcommand("generate", "Continue a prompt with a language model, streaming to stdout");
  cli::GenerateCommandOptions gen;
  bool greedy = false;
  infer::SamplingOptions sampling;
  generate
      ->add_option("--model", gen.model_dir,
                   "A decoder-only model: Hugging Face folder, tfm run folder or checkpoint")
      ->required();
  generate->add_option("--prompt", gen.prompt, "Text to continue")->required();
  generate->add_option("--max-new-tokens", gen.generate.rules.max_new_tokens, "Tokens to generate at most")
      ->check(CLI::PositiveNumber);
  auto* greedy_flag = generate->add_flag("--greedy", greedy, "The most probable token each step");
  generate->add_option("--temperature", sampling.temperature, "Sampling temperature")->excludes(greedy_flag);
  generate->add_option("--top-k", sampling.top_k, "Sample among the k most probable (0: all)")
      ->excludes(greedy_flag);
  generate->add_option("--top-p", sampling.top_p, "Sample among the smallest set of this probability")
      ->excludes(greedy_flag);
  generate->add_option("--seed", sampling.seed, "Sampling seed")->excludes(greedy_flag);
  generate->add_option("--repetition-penalty", gen.generate.rules.repetition_penalty,
                       "CTRL's penalty on tokens already in the text (1: off)");

  auto* perplexity = app.add_subcommand("perplexity", "Perplexity of a language model on a text file");
  std::string text_file;
  int64_t context = 0, stride = 0;
  perplexity
      ->add_option("--model", model_path,
                   "A decoder-only model: Hugging Face folder, tfm run folder or checkpoint")
      ->required();
  perplexity->add_option("--file", text_file, "Text, one line per segment (each ends with <|endoftext|>)")
      ->required();
  perplexity->add_option("--context", context, "Tokens per window")->required()->check(CLI::PositiveNumber);
  perplexity->add_option("--stride", stride, "Tokens between window starts (default: --context)")
      ->check(CLI::PositiveNumber);
  bool extrapolate = false;
  perplexity->add_flag("--extrapolate", extrapolate,
                       "Allow a context longer than the model's max_len (not with learned positions)");

  auto* inspect = app.add_subcommand("inspect", "Describe a model: architecture, parameter count, dtypes");
  inspect->add_option("--model", model_path, "Hugging Face folder, tfm run folder or checkpoint")->required();

  auto* export_cmd = app.add_subcommand("export", "Write a model as a Hugging Face folder");
  std::string hf_out, layout = "auto";
  export_cmd->add_option("--model", model_path, "tfm run folder, checkpoint or Hugging Face folder")
      ->required();
  export_cmd->add_option("--hf", hf_out, "Output folder (config.json, model.safetensors, tokenizer.json)")
      ->required();
  export_cmd
      ->add_option("--layout", layout,
                   "auto (Marian for encoder-decoders, Llama for RMSNorm decoders, GPT-2 otherwise), marian, "
                   "gpt2, llama")
      ->check(CLI::IsMember({"auto", "marian", "gpt2", "llama"}));

  auto* quantize =
      app.add_subcommand("quantize", "Store a model's projection and output weights in a smaller type");
  std::string quant_type, quant_out;
  quantize->add_option("--model", model_path, "tfm run folder, checkpoint or Hugging Face folder")
      ->required();
  quantize
      ->add_option("--type", quant_type,
                   "bf16 or f16 (half the bytes), int8 (per-row scales), q8_0 or q4_0 (llama.cpp's blocks "
                   "of 32; int4 is q4_0)")
      ->required()
      ->check(CLI::IsMember({"bf16", "f16", "int8", "q8_0", "q4_0", "int4"}));
  quantize->add_option("--out", quant_out, "Folder for the quantized checkpoint")->required();

  auto* attention = app.add_subcommand("attention", "Heatmaps of a model's attention for one input (HTML)");
  std::string attn_src, attn_tgt, html_out;
  attention->add_option("--model", model_path, "tfm run folder, checkpoint or Hugging Face folder")
      ->required();
  attention->add_option("--src", attn_src, "Source sentence (decoder-only, encoder-only: the text)")
      ->required();
  attention->add_option("--tgt", attn_tgt,
                        "Target sentence (encoder-decoder; default: the greedy translation)");
  attention->add_option("--out", html_out, "HTML file to write")->required();

  auto* report = app.add_subcommand("report", "An HTML page of a training run: curves, config, samples");
  std::string report_dir;
  report->add_option("run_dir", report_dir, "Run folder")->required();
  report->add_option("--out", html_out, "HTML file to write (default RUN_DIR/report.html)");

  auto* tokenize_cmd = app.add_subcommand(
      "tokenize", "Encode stdin lines to token ids (one line of space-separated ids each), or decode");
  std::string tokenizer_path;
  bool decode = false, as_tokens = false;
  tokenize_cmd
      ->add_option("--tokenizer", tokenizer_path,
                   "tokenizer.json, a folder holding one, or GPT-2's encoder.json")
      ->required();
  auto* decode_flag = tokenize_cmd->add_flag("--decode", decode, "Read lines of ids, write the text");
  tokenize_cmd->add_flag("--tokens", as_tokens, "Write the tokens' strings instead of their ids")
      ->excludes(decode_flag);

  auto* train_tokenizer = app.add_subcommand(
      "train-tokenizer",
      "Train a byte-level BPE tokenizer (as Hugging Face's BpeTrainer) and write its tokenizer.json");
  std::vector<std::string> inputs;
  int column = 0;
  tokenize::BpeTrainOptions bpe_options;
  std::string tokenizer_out;
  train_tokenizer->add_option("--input", inputs, "Text files, one text per line (comma-separated)")
      ->required()
      ->delimiter(',');
  train_tokenizer->add_option("--column", column, "Train on this tab-separated column only (1 = the first)")
      ->check(CLI::PositiveNumber);
  train_tokenizer
      ->add_option("--vocab-size", bpe_options.vocab_size,
                   "Tokens in all (special and the 256 bytes included)")
      ->required()
      ->check(CLI::PositiveNumber);
  train_tokenizer
      ->add_option("--min-frequency", bpe_options.min_frequency, "Never merge a pair seen fewer times")
      ->check(CLI::NonNegativeNumber);
  train_tokenizer
      ->add_option("--special", bpe_options.special_tokens, "Special tokens, ids 0, 1, ... (comma-separated)")
      ->delimiter(',');
  train_tokenizer->add_option("--out", tokenizer_out, "Where to write the tokenizer.json")->required();

  auto* lora = app.add_subcommand("lora", "LoRA adapters of a model trained with --lora");
  lora->require_subcommand(1);
  std::string lora_model, lora_out, lora_family, lora_base;
  auto* lora_merge = lora->add_subcommand("merge", "Fold the adapters into the base weights");
  lora_merge->add_option("--model", lora_model, "Run folder or checkpoint with adapters")->required();
  lora_merge->add_option("--out", lora_out, "Folder for the merged checkpoint")->required();
  auto* lora_export = lora->add_subcommand("export", "Save the adapters alone in Hugging Face PEFT's layout");
  lora_export->add_option("--model", lora_model, "Run folder or checkpoint with adapters")->required();
  lora_export->add_option("--peft", lora_out, "Folder for adapter_config.json + adapter_model.safetensors")
      ->required();
  lora_export->add_option("--family", lora_family,
                          "Hugging Face layout of the tensor names (gpt2, llama, marian, ...; default: the "
                          "model's own, else tfm's names)");
  lora_export->add_option("--base", lora_base, "base_model_name_or_path to record (the folder fine-tuned)");

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

  cli::ServeCommandOptions serve_options;
  auto* serve = cli::add_serve_command(app, serve_options);

  CLI11_PARSE(app, argc, argv);
  try {
    if (train->parsed()) return cmd_train(config_path, overrides, run_options);
    if (translate->parsed()) return cmd_translate(model_path, translate_options);
    if (bleu->parsed()) return cli::cmd_bleu(bleu_options);
    if (generate->parsed()) {
      if (!greedy) gen.generate.sampling = sampling;
      return cli::cmd_generate(gen);
    }
    if (perplexity->parsed())
      return cli::cmd_perplexity(model_path, text_file, context, stride ? stride : context, extrapolate);
    if (inspect->parsed()) return cli::cmd_inspect(model_path);
    if (export_cmd->parsed()) return cli::cmd_export(model_path, hf_out, layout);
    if (quantize->parsed()) return cli::cmd_quantize(model_path, quant_type, quant_out);
    if (lora_merge->parsed()) return cli::cmd_lora_merge(lora_model, lora_out);
    if (lora_export->parsed()) return cli::cmd_lora_export(lora_model, lora_family, lora_base, lora_out);
    if (attention->parsed()) return cli::cmd_attention(model_path, attn_src, attn_tgt, html_out);
    if (report->parsed()) return cli::cmd_report(report_dir, html_out);
    if (tokenize_cmd->parsed()) return cmd_tokenize(tokenizer_path, decode, as_tokens);
    if (train_tokenizer->parsed()) return cmd_train_tokenizer(inputs, column, bpe_options, tokenizer_out);
    if (serve->parsed()) return cli::cmd_serve(serve_options);
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
