#include "train/trainer.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "core/error.h"
#include "data/batcher.h"
#include "data/parallel_corpus.h"
#include "data/token_file.h"
#include "infer/translate.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "models/transformer.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/tokenizers.h"

namespace tfm::train {

namespace fs = std::filesystem;

namespace {

std::atomic<int> g_stop_signal{0};
void on_stop_signal(int sig) { g_stop_signal = sig; }

// Installs SIGINT/SIGTERM handlers for the life of a run: the loop saves a checkpoint and returns.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    previous_int_ = std::signal(SIGINT, on_stop_signal);
    previous_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

ModelConfig model_config_for(const TrainConfig& cfg, const tokenize::Tokenizer& src,
                             const tokenize::Tokenizer& tgt) {
  const ModelSection& m = cfg.model;
  ModelConfig c;
  c.src_vocab = src.vocab_size();
  c.tgt_vocab = tgt.vocab_size();
  c.d_model = m.d_model;
  c.heads = int(m.heads);
  c.d_ff = m.d_ff;
  c.encoder_layers = int(m.encoder_layers);
  c.decoder_layers = int(m.decoder_layers);
  c.max_len = m.max_len;
  c.dropout = float(m.dropout);
  c.norm = m.norm == "seed" ? NormType::SeedLayerNorm : NormType::LayerNorm;
  c.norm_position = m.norm_position == "pre" ? NormPosition::Pre : NormPosition::Post;
  c.norm_eps = float(m.norm_eps);
  c.final_norm = c.norm_position == NormPosition::Pre;  // post-norm stacks end normalised already
  c.tie_output = m.tie_embeddings;
  c.embedding_scale = std::sqrt(float(c.d_model));
  c.pad_id = tgt.pad_id();
  c.bos_id = tgt.bos_id();
  c.eos_id = tgt.eos_id();
  if (src.pad_id() != tgt.pad_id() || src.bos_id() != tgt.bos_id() || src.eos_id() != tgt.eos_id())
    fail("source and target tokenizers must share the ids of their special tokens");
  return c;
}

struct ValidationSet {
  std::vector<data::SentencePair> samples;  // the first valid_samples pairs, as text
  std::vector<data::Batch> batches;         // the pairs that fit max_len, in token-budget chunks
};

std::string seconds_since(std::chrono::steady_clock::time_point start) {
  return fmt::format("{:.2f} s",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// The corpus's token file in the run folder: reused while the corpus and the tokenizers are those it was
// built from (e.g. on resume), rebuilt otherwise.
data::TokenFile tokenized_corpus(const std::string& corpus, const data::CorpusOptions& options,
                                 const std::string& cache, const tokenize::Tokenizer& src,
                                 const tokenize::Tokenizer& tgt,
                                 const std::function<void(const std::string&)>& say) {
  const auto start = std::chrono::steady_clock::now();
  data::CacheOutcome outcome;
  data::TokenFile file = data::TokenFile::open_or_build(cache, {corpus, options, {&src, &tgt}}, &outcome);
  if (outcome.built)
    say(fmt::format("data: tokenized {} into {} in {} ({})", corpus, cache, seconds_since(start),
                    outcome.reason));
  else
    say(fmt::format("data: reusing {}", cache));
  return file;
}

ValidationSet load_validation(const TrainConfig& cfg, const std::string& run_dir,
                              const tokenize::Tokenizer& src, const tokenize::Tokenizer& tgt,
                              const data::FrameIds& ids, const std::function<void(const std::string&)>& say) {
  ValidationSet v;
  if (cfg.data.valid.empty()) return v;
  const data::TokenFile tokens = tokenized_corpus(
      cfg.data.valid, corpus_options(cfg.data), (fs::path(run_dir) / "valid.tokens").string(), src, tgt, say);
  int64_t used = tokens.records();
  if (cfg.data.valid_max_pairs > 0) used = std::min(used, cfg.data.valid_max_pairs);
  v.batches = data::in_order_batches(*tokens.pairs(), used, cfg.model.max_len, cfg.data.max_tokens, ids);
  data::CorpusReader reader(cfg.data.valid, corpus_options(cfg.data));
  data::SentencePair pair;
  while (int64_t(v.samples.size()) < cfg.data.valid_samples && reader.next(pair)) v.samples.push_back(pair);
  return v;
}

// Mean negative log-likelihood per target token (no label smoothing, so exp() is the perplexity).
double validation_loss(const Transformer& model, const ValidationSet& v) {
  double total = 0;
  int64_t tokens = 0;
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context c{tape, false, nullptr};
  for (const data::Batch& b : v.batches) {
    tape.reset();
    double loss = model.loss(c, b.src, b.tgt_in, b.labels, 0.0f).value().item();
    total += loss * double(b.tgt_tokens);
    tokens += b.tgt_tokens;
  }
  return tokens ? total / double(tokens) : NAN;
}

void append_jsonl(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path, std::ios::app);
  f << j.dump() << "\n";
  if (!f) fail("{}: cannot append metrics", path);
}

}  // namespace

TrainConfig load_run_config(const std::string& run_dir) {
  std::string ckpt = (fs::path(run_dir) / "checkpoint.safetensors").string();
  if (!fs::exists(ckpt)) fail("{}: nothing to resume (no checkpoint.safetensors)", run_dir);
  io::CheckpointInfo info = io::read_checkpoint_info(ckpt);
  return from_json(info.train_config, ckpt);
}

RunSummary run_training(const TrainConfig& cfg, const RunOptions& options) {
  const bool resuming = !options.resume_dir.empty();
  const std::string run_dir = resuming ? options.resume_dir : cfg.train.out_dir;
  const std::string ckpt_path = (fs::path(run_dir) / "checkpoint.safetensors").string();
  const std::string metrics_path = (fs::path(run_dir) / "metrics.jsonl").string();
  const int64_t max_steps = options.max_steps > 0 ? options.max_steps : cfg.train.max_steps;
  if (cfg.train.threads > 0) omp_set_num_threads(int(cfg.train.threads));
  Progress progress(stderr);
  auto say = [&](const std::string& s) {
    if (!options.quiet) progress.message(s);
  };

  // Tokenizers: restored from the checkpoint, or prepared as the config says (see tokenizers.h).
  io::CheckpointInfo resumed;
  if (resuming) resumed = io::read_checkpoint_info(ckpt_path);
  std::shared_ptr<const tokenize::Tokenizer> src_tok, tgt_tok;
  if (resuming) {
    src_tok = tokenize::load_tokenizer_json(resumed.src_tokenizer, ckpt_path);
    tgt_tok = tokenize::load_tokenizer_json(resumed.tgt_tokenizer, ckpt_path);
  } else {
    const RunTokenizers tokenizers = prepare_tokenizers(cfg, run_dir, say);
    src_tok = tokenizers.src;
    tgt_tok = tokenizers.tgt;
  }
  ModelConfig mc = model_config_for(cfg, *src_tok, *tgt_tok);
  data::FrameIds ids{int32_t(mc.pad_id), int32_t(mc.bos_id), int32_t(mc.eos_id)};
  fs::create_directories(run_dir);
  const data::TokenFile train_tokens =
      tokenized_corpus(cfg.data.train, corpus_options(cfg.data),
                       (fs::path(run_dir) / "train.tokens").string(), *src_tok, *tgt_tok, say);
  const data::CorpusStats& corpus_stats = train_tokens.info().stats;
  say(fmt::format("data: {} pairs from {} ({} lines skipped); vocab {} source, {} target",
                  corpus_stats.records, cfg.data.train, corpus_stats.skipped(), mc.src_vocab, mc.tgt_vocab));

  data::BatchConfig bc{ids, cfg.model.max_len, cfg.data.max_tokens, uint64_t(cfg.train.seed)};
  data::BatchIterator batches(train_tokens.pairs(), bc);
  RunSummary summary;
  summary.run_dir = run_dir;
  summary.skipped_too_long = batches.stats().skipped_too_long;
  if (batches.stats().skipped_too_long)
    say(fmt::format("data: skipped {} pairs longer than max_len {}", batches.stats().skipped_too_long,
                    cfg.model.max_len));
  ValidationSet valid = load_validation(cfg, run_dir, *src_tok, *tgt_tok, ids, say);

  Transformer model(mc);
  AdamOptions ao;
  ao.lr = float(cfg.train.lr);
  ao.beta1 = float(cfg.train.beta1);
  ao.beta2 = float(cfg.train.beta2);
  ao.eps = float(cfg.train.eps);
  ao.weight_decay = float(cfg.train.weight_decay);
  ao.decoupled = cfg.train.optimizer == "adamw";
  const ParameterList params = model.parameters().list();
  Adam optimizer(params, ao);
  io::TrainingState state;
  state.rng_seed = uint64_t(cfg.train.seed) * 0x9e3779b97f4a7c15ull + 1;
  if (resuming) {
    if (to_json(model_config_from_json(resumed.model_config, ckpt_path)) != to_json(mc))
      fail("{}: checkpoint is of another architecture than its own config describes", ckpt_path);
    io::load_checkpoint_weights(ckpt_path, model.parameters(), &optimizer);
    state = resumed.state;
    batches.set_position({state.epoch, state.batch_index});
    say(fmt::format("resuming {} at step {}", run_dir, state.step));
  } else {
    model.init_weights(uint64_t(cfg.train.seed));
    io::write_file_atomic((fs::path(run_dir) / "config.json").string(), to_json(cfg).dump(2) + "\n");
    std::error_code ec;
    fs::remove(metrics_path, ec);
  }
  say(fmt::format("model: {} parameters, d_model {}, {}+{} layers, {} heads", model.parameters().numel(),
                  mc.d_model, mc.encoder_layers, mc.decoder_layers, mc.heads));
  Rng rng(state.rng_seed, state.rng_offset);

  ScheduleOptions so;
  so.kind = parse_schedule(cfg.train.schedule);
  so.peak_lr = float(cfg.train.lr);
  so.warmup_steps = cfg.train.warmup_steps;
  so.total_steps = max_steps;

  auto save = [&] {
    io::CheckpointInfo info;
    info.model_config = to_json(mc);
    info.train_config = to_json(cfg);
    info.src_tokenizer = src_tok->to_json();
    info.tgt_tokenizer = tgt_tok->to_json();
    state.epoch = batches.position().epoch;
    state.batch_index = batches.position().index;
    state.rng_offset = rng.offset();
    info.state = state;
    io::save_checkpoint(ckpt_path, model.parameters(), &optimizer, info);
  };
  auto evaluate = [&] {
    if (valid.batches.empty()) return;
    summary.valid_loss = validation_loss(model, valid);
    say(fmt::format("valid  step {}  loss {:.4f}  ppl {:.2f}", state.step, summary.valid_loss,
                    std::exp(summary.valid_loss)));
    append_jsonl(metrics_path, {{"step", state.step}, {"valid_loss", summary.valid_loss}});
    std::vector<std::string> sources;
    for (const data::SentencePair& sample : valid.samples) sources.push_back(sample.src);
    infer::TranslateOptions to;
    to.max_new_tokens = cfg.model.max_len;
    std::vector<std::string> hyps = infer::translate(model, *src_tok, *tgt_tok, sources, to);
    for (size_t i = 0; i < hyps.size(); ++i) {
      say("  src: " + sources[i]);
      say("  ref: " + valid.samples[i].tgt);
      say("  out: " + hyps[i]);
    }
  };

  StopSignals signals;
  ag::Tape tape;
  summary.valid_loss = NAN;
  auto clock = std::chrono::steady_clock::now();
  const double elapsed_before = state.elapsed_seconds;
  double window_tokens = 0;
  auto window_start = clock;
  while (state.step < max_steps) {
    if (g_stop_signal) {
      say(fmt::format("signal {}: saving a checkpoint at step {} and stopping", int(g_stop_signal),
                      state.step));
      summary.interrupted = true;
      break;
    }
    data::BatchPosition where = batches.position();
    data::Batch batch = batches.next();
    tape.reset();
    float loss_value;
    {
      ag::Tape::Scope scope(tape);
      nn::Context c{tape, true, &rng};
      ag::Var loss = model.loss(c, batch.src, batch.tgt_in, batch.labels, float(cfg.train.label_smoothing));
      loss_value = loss.value().item();
      if (!std::isfinite(loss_value))
        fail("step {}: loss is {} on batch {} of epoch {} (corpus lines {} ...); stopping before the update",
             state.step + 1, loss_value, where.index, where.epoch,
             batch.examples.empty() ? 0 : train_tokens.line(batch.examples[0]));
      tape.backward(loss);
    }
    if (cfg.train.clip_norm > 0) clip_grad_norm(params, float(cfg.train.clip_norm));
    ++state.step;
    float lr = learning_rate(so, state.step);
    optimizer.step(lr);
    optimizer.zero_grad();
    double tokens = double(batch.src_tokens + batch.tgt_tokens);
    state.tokens_seen += tokens;
    window_tokens += tokens;
    summary.last_loss = loss_value;
    auto now = std::chrono::steady_clock::now();
    state.elapsed_seconds = elapsed_before + std::chrono::duration<double>(now - clock).count();
    bool last = state.step == max_steps;
    if (state.step % cfg.train.log_every == 0 || last) {
      double window = std::chrono::duration<double>(now - window_start).count();
      double tps = window > 0 ? window_tokens / window : 0;
      append_jsonl(metrics_path, {{"step", state.step},
                                  {"epoch", where.epoch},
                                  {"loss", loss_value},
                                  {"lr", lr},
                                  {"tokens_per_second", tps},
                                  {"elapsed", state.elapsed_seconds}});
      if (!options.quiet)
        progress.update({state.step, max_steps, where.epoch, loss_value, lr, tps, state.elapsed_seconds});
      window_tokens = 0;
      window_start = now;
    }
    if (cfg.train.eval_every > 0 && (state.step % cfg.train.eval_every == 0 || last)) evaluate();
    if (cfg.train.checkpoint_every > 0 && state.step % cfg.train.checkpoint_every == 0 && !last) save();
  }
  save();
  if (!options.quiet) progress.finish();
  summary.steps = state.step;
  return summary;
}

}  // namespace tfm::train
