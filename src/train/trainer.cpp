#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

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
#include "dist/single_process.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "kernels/cpu/gemm.h"
#include "models/load_model.h"
#include "models/quantize.h"
#include "models/transformer.h"
#include "train/loss_scaler.h"
#include "train/objective.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/step.h"
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

kernels::GemmPrecision product_precision(const std::string& name) {
  if (name == "bfloat16") return kernels::GemmPrecision::BF16;
  if (name == "float16") return kernels::GemmPrecision::F16;
  return kernels::GemmPrecision::F32;
}

Arch arch_named(const std::string& name) {
  if (name == "decoder-only") return Arch::DecoderOnly;
  if (name == "encoder-only") return Arch::EncoderOnly;
  return Arch::EncoderDecoder;
}

ModelConfig model_config_for(const TrainConfig& cfg, const tokenize::Tokenizer& src,
                             const tokenize::Tokenizer& tgt) {
  const ModelSection& m = cfg.model;
  ModelConfig c;
  c.arch = arch_named(m.arch);
  c.src_vocab = src.vocab_size();
  c.tgt_vocab = tgt.vocab_size();
  c.d_model = m.d_model;
  c.heads = int(m.heads);
  c.kv_heads = int(m.kv_heads);
  c.d_ff = m.d_ff;
  c.encoder_layers = c.arch == Arch::DecoderOnly ? 0 : int(m.encoder_layers);
  c.decoder_layers = c.arch == Arch::EncoderOnly ? 0 : int(m.decoder_layers);
  c.max_len = m.max_len;
  c.dropout = float(m.dropout);
  c.attention_dropout = float(m.attention_dropout);
  c.activation_dropout = float(m.activation_dropout);
  c.norm = m.norm == "seed"      ? NormType::SeedLayerNorm
           : m.norm == "rmsnorm" ? NormType::RMSNorm
                                 : NormType::LayerNorm;
  c.norm_bias = c.norm != NormType::RMSNorm;
  c.norm_position = m.norm_position == "pre" ? NormPosition::Pre : NormPosition::Post;
  c.norm_eps = float(m.norm_eps);
  c.final_norm = c.norm_position == NormPosition::Pre;  // post-norm stacks end normalised already
  c.positions = m.positions == "sinusoidal_half" ? PositionKind::SinusoidalHalf
                : m.positions == "learned"       ? PositionKind::Learned
                : m.positions == "rope"          ? PositionKind::RoPE
                : m.positions == "alibi"         ? PositionKind::ALiBi
                : m.positions == "relative"      ? PositionKind::T5Relative
                                                 : PositionKind::SinusoidalInterleaved;
  c.activation = m.activation == "gelu"        ? Activation::GeluErf
                 : m.activation == "gelu_tanh" ? Activation::GeluTanh
                 : m.activation == "swiglu"    ? Activation::SwiGLU
                                               : Activation::ReLU;
  c.attention = m.attention == "linear" ? AttentionKind::Linear : AttentionKind::Softmax;
  c.sliding_window = m.sliding_window;
  c.global_tokens = m.global_tokens;
  c.experts = int(m.experts);
  c.experts_top_k = int(m.experts_top_k);
  c.router_aux_loss_coef = float(m.router_aux_loss_coef);
  c.tie_output = m.tie_embeddings;
  c.share_embeddings = m.share_embeddings && c.arch == Arch::EncoderDecoder;
  if (c.share_embeddings && &src != &tgt)
    fail(
        "model.share_embeddings needs one tokenizer for both languages (data.tokenizer = \"bpe\" or a "
        "tokenizer_file), not the word-level tokenizer's two vocabularies");
  c.embedding_scale = m.scale_embeddings ? std::sqrt(float(c.d_model)) : 1.0f;
  c.attention_bias = m.attention_bias;
  c.ffn_bias = m.ffn_bias;
  c.output_bias = m.output_bias;
  c.pad_id = tgt.pad_id();
  c.bos_id = tgt.bos_id();
  c.eos_id = tgt.eos_id();
  if (src.pad_id() != tgt.pad_id() || src.bos_id() != tgt.bos_id() || src.eos_id() != tgt.eos_id())
    fail("source and target tokenizers must share the ids of their special tokens");
  if (c.arch != Arch::EncoderDecoder && c.eos_id < 0)
    fail("a language model needs an end-of-sequence token to end each line with; the tokenizer has none");
  return c;
}

void append_jsonl(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path, std::ios::app);
  f << j.dump() << "\n";
  if (!f) fail("{}: cannot append metrics", path);
}

// Drops the lines a killed run logged after its last checkpoint (steps past `step`, and a final test
// line), which the resumed run logs again.
void keep_metrics_until(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() <= step)
      kept += line + "\n";
  }
  io::write_file_atomic(path, kept);
}

uint64_t fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Every rank must train the same thing: the config (but for the run folder and the threads, which are
// each host's own), the tokenizers and the corpus as read. Collective; every rank fails alike.
void check_same_run(dist::Communicator& comm, const TrainConfig& cfg, const tokenize::Tokenizer& src,
                    const tokenize::Tokenizer& tgt, const Objective& objective) {
  nlohmann::json config = to_json(cfg);
  config["train"].erase("out_dir");
  config["train"].erase("threads");
  for (const char* path : {"train", "valid", "test"}) config["data"].erase(path);  // compared as read
  const std::string what[] = {"configuration", "tokenizers", "training corpus"};
  const std::string mine[] = {config.dump(), src.hash() + "/" + tgt.hash(), objective.data_identity()};
  std::vector<double> hashes;
  for (const std::string& m : mine) {
    const uint64_t h = fnv1a(m);
    hashes.push_back(double(h >> 32));
    hashes.push_back(double(h & 0xffffffffu));
  }
  const std::vector<double> all = comm.all_gather(hashes);
  for (int r = 1; r < comm.size(); ++r)
    for (size_t k = 0; k < 3; ++k)
      if (all[size_t(r) * 6 + 2 * k] != all[2 * k] || all[size_t(r) * 6 + 2 * k + 1] != all[2 * k + 1])
        fail(
            "rank {} trains with another {} than rank 0: every rank must train with the same (this is rank "
            "{}: {})",
            r, what[k], comm.rank(),
            k == 2   ? cfg.data.train + ": " + mine[2]
            : k == 1 ? "tokenizers " + mine[1]
                     : "see the configuration in its run folder");
}

}  // namespace

TrainConfig load_run_config(const std::string& run_dir) {
  std::string ckpt = (fs::path(run_dir) / "checkpoint.safetensors").string();
  if (!fs::exists(ckpt)) fail("{}: nothing to resume (no checkpoint.safetensors)", run_dir);
  io::CheckpointInfo info = io::read_checkpoint_info(ckpt);
  return from_json(info.train_config, ckpt);
}

RunSummary run_training(const TrainConfig& cfg, const RunOptions& options) {
  dist::SingleProcess single_process;
  dist::Communicator& comm = options.comm ? *options.comm : single_process;
  const bool lead = comm.rank() == 0;  // logs, evaluates and writes the run folder
  comm.set_timeout(cfg.train.dist_timeout);
  const bool resuming = !options.resume_dir.empty();
  const std::string run_dir = resuming ? options.resume_dir : cfg.train.out_dir;
  const std::string ckpt_path = (fs::path(run_dir) / "checkpoint.safetensors").string();
  const std::string metrics_path = (fs::path(run_dir) / "metrics.jsonl").string();
  const int64_t max_steps = options.max_steps > 0 ? options.max_steps : cfg.train.max_steps;
  if (cfg.train.threads > 0) omp_set_num_threads(int(cfg.train.threads));
  Progress progress(stderr);
  auto say = [&](const std::string& s) {
    if (!options.quiet && lead) progress.message(s);
  };
  const int64_t shards = cfg.train.shards > 0 ? cfg.train.shards : comm.size();
  if (shards % comm.size() != 0)
    fail("train.shards = {} is not a multiple of the {} ranks (each rank runs as many shards)", shards,
         comm.size());
  const int64_t local_shards = shards / comm.size();
  if (comm.size() > 1)
    std::fprintf(stderr, "%s\n",
                 fmt::format("tfm train: rank {} of {} on {} (pid {}), shards {} to {} of {}", comm.rank(),
                             comm.size(), comm.host(), int(getpid()), comm.rank() * local_shards,
                             (comm.rank() + 1) * local_shards - 1, shards)
                     .c_str());

  // Model and tokenizers: restored from the checkpoint, loaded from train.init_from, or built as the
  // config says (tokenizers trained on the corpus, see tokenizers.h; weights initialised at random).
  // Rank 0 prepares first: the others then find its tokenizers and token files in a shared run folder.
  std::unique_ptr<Transformer> model;
  std::shared_ptr<const tokenize::Tokenizer> src_tok, tgt_tok;
  io::CheckpointInfo resumed;
  std::unique_ptr<Objective> objective;
  auto prepare = [&](const Say& say) {
    if (resuming) {
      resumed = io::read_checkpoint_info(ckpt_path);
      TokenizerPair tokenizers = checkpoint_tokenizers(resumed, ckpt_path);
      src_tok = std::move(tokenizers.src);
      tgt_tok = std::move(tokenizers.tgt);
      const ModelConfig mc = model_config_from_json(resumed.model_config, ckpt_path);
      ModelConfig without_adapters = mc;  // train.lora adds them to the configured model
      without_adapters.lora.clear();
      if (cfg.train.init_from.empty() &&
          to_json(model_config_for(cfg, *src_tok, *tgt_tok)) != to_json(without_adapters))
        fail("{}: checkpoint is of another architecture than its own config describes", ckpt_path);
      model = std::make_unique<Transformer>(mc);
    } else if (!cfg.train.init_from.empty()) {
      LoadedModel loaded = load_model(cfg.train.init_from);
      if (!loaded.src) fail("{}: no tokenizer.json to train with", cfg.train.init_from);
      model = std::move(loaded.model);
      dequantize_model(*model);  // a quantized model trains from its float32 values
      src_tok = loaded.src;
      tgt_tok = loaded.tgt;
      say(fmt::format("model: {} from {} ([model] ignored)", arch_name(model->config().arch),
                      cfg.train.init_from));
    } else {
      const RunTokenizers tokenizers = prepare_tokenizers(cfg, run_dir, say);
      src_tok = tokenizers.src;
      tgt_tok = tokenizers.tgt;
      model = std::make_unique<Transformer>(model_config_for(cfg, *src_tok, *tgt_tok));
    }
    fs::create_directories(run_dir);
    objective = make_objective(cfg, model->config(), run_dir, src_tok, tgt_tok, say);
  };
  if (lead) prepare(say);
  if (comm.size() > 1) {
    comm.set_context("the start (rank 0 prepares the tokenizers and token files)");
    comm.barrier();
    if (!lead) prepare([](const std::string&) {});
    check_same_run(comm, cfg, *src_tok, *tgt_tok, *objective);
  }
  // LoRA: adapters on the targeted projections (a resumed run's model has them already), the rest frozen.
  if (!resuming && !cfg.train.lora.empty())
    model->add_lora(nn::parse_lora_spec(cfg.train.lora), uint64_t(cfg.train.seed));
  if (!model->config().lora.empty()) {
    model->freeze_all_but_lora();
    int64_t trainable = 0;
    for (const Parameter* p : model->parameters().list())
      if (p->trainable) trainable += p->value.numel();
    say(fmt::format("LoRA {}: {} trainable parameters of {} ({:.2f}%)", model->config().lora, trainable,
                    model->parameters().numel(),
                    100.0 * double(trainable) / double(model->parameters().numel())));
  }
  const ModelConfig& mc = model->config();
  RunSummary summary;
  summary.run_dir = run_dir;
  summary.skipped_too_long = objective->skipped_too_long();

  AdamOptions ao;
  ao.lr = float(cfg.train.lr);
  ao.beta1 = float(cfg.train.beta1);
  ao.beta2 = float(cfg.train.beta2);
  ao.eps = float(cfg.train.eps);
  ao.weight_decay = float(cfg.train.weight_decay);
  ao.decoupled = cfg.train.optimizer == "adamw";
  const ParameterList params = model->parameters().list();
  GradientSync sync(params, comm, {.bucket_mb = cfg.train.bucket_mb, .zero = cfg.train.zero == 1});
  Adam optimizer(sync.owned(), ao);
  io::TrainingState state;
  state.rng_seed = uint64_t(cfg.train.seed) * 0x9e3779b97f4a7c15ull + 1;
  if (resuming) {
    io::load_checkpoint_weights(ckpt_path, model->parameters(), &optimizer);
    state = resumed.state;
    objective->set_position({state.epoch, state.batch_index});
    if (lead) keep_metrics_until(metrics_path, state.step);
    say(fmt::format("resuming {} at step {}", run_dir, state.step));
  } else {
    if (cfg.train.init_from.empty()) model->init_weights(uint64_t(cfg.train.seed));
    if (lead) {
      io::write_file_atomic((fs::path(run_dir) / "config.json").string(), to_json(cfg).dump(2) + "\n");
      std::error_code ec;
      fs::remove(metrics_path, ec);
    }
  }
  if (comm.size() > 1) {
    // Every rank starts from rank 0's weights, whatever it read or drew.
    comm.set_context("the start (rank 0 shares the weights)");
    for (Parameter* p : params)
      comm.broadcast({reinterpret_cast<std::byte*>(p->value.f32()), size_t(p->value.numel()) * sizeof(float)},
                     0);
    const std::vector<double> state_bytes =
        comm.all_gather(std::vector<double>{8.0 * double(sync.owned_elements())});
    summary.optimizer_bytes_per_rank = *std::max_element(state_bytes.begin(), state_bytes.end());
    say(fmt::format(
        "data parallel: {} ranks ({}), {} shard(s) each; optimizer state {:.1f} MB per rank{}", comm.size(),
        comm.describe(), local_shards, summary.optimizer_bytes_per_rank / 1e6,
        cfg.train.zero ? fmt::format(" (ZeRO-1; {:.1f} MB unsharded)", 8e-6 * double(sync.elements())) : ""));
  } else {
    summary.optimizer_bytes_per_rank = 8.0 * double(sync.owned_elements());
  }
  say(fmt::format("model: {}, {} parameters, d_model {}, {}+{} layers, {} heads", arch_name(mc.arch),
                  model->parameters().numel(), mc.d_model, mc.encoder_layers, mc.decoder_layers, mc.heads));
  const bool half = cfg.train.precision == "float16";
  LossScaler scaler(
      {.initial_scale = cfg.train.loss_scale, .growth_interval = cfg.train.loss_scale_growth_interval});
  if (half && state.loss_scale > 0) scaler.restore(state.loss_scale, state.loss_scale_good_steps);

  ScheduleOptions so;
  so.kind = parse_schedule(cfg.train.schedule);
  so.peak_lr = float(cfg.train.lr);
  so.warmup_steps = cfg.train.warmup_steps;
  so.total_steps = max_steps;

  // Everything but the state, serialised once: the tokenizers' JSON does not change during a run.
  io::CheckpointInfo info = checkpoint_info(*model, *src_tok, *tgt_tok);
  info.train_config = to_json(cfg);
  // Collective (ZeRO gathers the moments); rank 0 writes.
  auto save = [&] {
    comm.set_context(fmt::format("the checkpoint of step {}", state.step));
    state.epoch = objective->position().epoch;
    state.batch_index = objective->position().index;
    if (half) state.loss_scale = scaler.scale(), state.loss_scale_good_steps = scaler.good_steps();
    info.state = state;
    const std::map<std::string, Tensor> moments = sync.full_optimizer_state(optimizer);
    if (lead) io::save_checkpoint(ckpt_path, model->parameters(), moments, optimizer.steps(), info);
  };
  const std::string best_path = (fs::path(run_dir) / "best.safetensors").string();
  auto save_best = [&] {
    info.state = state;
    io::save_checkpoint(best_path, model->parameters(), nullptr, info);
  };
  // Validation on rank 0; returns true when early stopping says to stop (on every rank).
  auto evaluate = [&] {
    comm.set_context(fmt::format("the evaluation after step {}", state.step));
    uint8_t stop = 0;
    if (lead && !cfg.data.valid.empty()) {
      const Evaluation e = objective->evaluate(*model);
      summary.valid_loss = e.loss;
      nlohmann::json line = {{"step", state.step}, {"valid_loss", e.loss}};
      std::string text =
          fmt::format("valid  step {}  loss {:.4f}  ppl {:.2f}", state.step, e.loss, std::exp(e.loss));
      if (e.bleu) {
        line["valid_bleu"] = *e.bleu;
        line["valid_chrf"] = *e.chrf;
        text += fmt::format("  BLEU {:.2f}  chrF {:.2f}", *e.bleu, *e.chrf);
        summary.valid_bleu = *e.bleu;
      }
      // The best so far, as best_metric says: a higher value is better (the loss is negated).
      const std::string metric =
          cfg.train.best_metric == "auto" ? (e.bleu ? "bleu" : "loss") : cfg.train.best_metric;
      if (metric != "none" && std::isfinite(e.loss)) {
        const double value = metric == "bleu" ? e.bleu.value_or(0) : -e.loss;
        if (state.best_step < 0 || value > state.best_value) {
          state.best_value = value;
          state.best_step = state.step;
          state.evaluations_since_best = 0;
          save_best();
          text += "  (best)";
        } else {
          ++state.evaluations_since_best;
          stop = cfg.train.early_stopping > 0 && state.evaluations_since_best >= cfg.train.early_stopping;
        }
      }
      const std::vector<std::string> samples = objective->samples(*model);
      if (!samples.empty()) line["samples"] = samples;
      append_jsonl(metrics_path, line);
      say(text);
      for (const std::string& sample : samples) say(sample);
    }
    comm.broadcast({reinterpret_cast<std::byte*>(&stop), 1}, 0);
    return stop != 0;
  };

  // The test corpus translated by the best checkpoint (the final weights when there is none).
  auto final_test = [&](RunSummary& s) {
    if (state.best_step >= 0) io::load_checkpoint_weights(best_path, model->parameters(), nullptr);
    const auto start = std::chrono::steady_clock::now();
    const std::optional<TestResult> t = objective->test(*model, cfg.train.test_beam);
    if (!t) return;
    std::string text;
    for (const std::string& h : t->hypotheses) text += h + "\n";
    io::write_file_atomic((fs::path(run_dir) / "test.hyp").string(), text);
    s.test_bleu = t->bleu.score;
    append_jsonl(metrics_path, {{"test_bleu", t->bleu.score},
                                {"test_chrf", t->chrf.score},
                                {"test_beam", cfg.train.test_beam},
                                {"test_step", state.best_step >= 0 ? state.best_step : state.step}});
    say(fmt::format("test  {} ({} beams, the model of step {}, {:.1f} s): {}", cfg.data.test,
                    cfg.train.test_beam, state.best_step >= 0 ? state.best_step : state.step,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                    t->bleu.format()));
    say(fmt::format("test  {}", t->chrf.format()));
  };

  StopSignals signals;
  ag::Tape tape;
  StepSetup setup{.model = *model,
                  .objective = *objective,
                  .optimizer = optimizer,
                  .sync = sync,
                  .comm = comm,
                  .tape = tape,
                  .scaler = half ? &scaler : nullptr,
                  .precision = product_precision(cfg.train.precision),
                  .shards = {comm.rank() * local_shards, local_shards, shards},
                  .clip_norm = cfg.train.clip_norm > 0 ? float(cfg.train.clip_norm) : INFINITY,
                  .rng_seed = state.rng_seed};
  summary.valid_loss = NAN;
  // A fine-tuning run first measures where it starts from.
  if (!resuming && !cfg.train.init_from.empty()) evaluate();
  auto clock = std::chrono::steady_clock::now();
  const double elapsed_before = state.elapsed_seconds;
  double window_tokens = 0, window_comm_wait = 0, window_comm_bytes = 0;
  int64_t window_steps = 0;
  auto window_start = clock;
  constexpr int kMaxSkippedInARow = 20;
  int skipped_in_a_row = 0;
  // float16: overflowing steps in a row that stop the run (the scale has then fallen by 2^30).
  constexpr int kMaxOverflowsInARow = 30;
  int overflows_in_a_row = 0;
  bool stop_agreed = false;  // a rank's signal, seen by all at the end of a step
  while (state.step < max_steps) {
    if (comm.size() == 1 ? g_stop_signal != 0 : stop_agreed) {
      say(fmt::format("signal {}: saving a checkpoint at step {} and stopping", int(g_stop_signal),
                      state.step));
      summary.interrupted = true;
      break;
    }
    const int64_t epoch = objective->position().epoch;
    comm.set_context(fmt::format("step {}", state.step + 1));
    const float lr = learning_rate(so, state.step + 1);
    const StepOutcome step = run_step(setup, state.step + 1, lr, g_stop_signal != 0);
    stop_agreed = step.stop;
    window_comm_wait += step.comm.wait_seconds;
    window_comm_bytes += step.comm.bytes;
    // A non-finite loss or gradient norm: the batch is skipped (--skip-nonfinite) or the run stops, before
    // any update, so no checkpoint ever holds what it would have done.
    if (step.overflow) {
      ++summary.skipped_overflow;
      if (lead) append_jsonl(metrics_path, {{"step", state.step}, {"loss_scale_overflow", scaler.scale()}});
      if (++overflows_in_a_row >= kMaxOverflowsInARow)
        fail("step {}: the gradients overflowed {} times in a row, down to loss scale {}; stopping",
             state.step + 1, overflows_in_a_row, scaler.scale());
      continue;
    }
    overflows_in_a_row = 0;
    if (!step.nonfinite.empty()) {
      if (!options.skip_nonfinite)
        fail(
            "step {}: {} on {}; stopping before the update (the last checkpoint is intact; --skip-nonfinite "
            "skips such batches)",
            state.step + 1, step.nonfinite, step.batch.where);
      ++summary.skipped_nonfinite;
      say(fmt::format("step {}: {} on {}; batch skipped", state.step + 1, step.nonfinite, step.batch.where));
      if (lead) append_jsonl(metrics_path, {{"step", state.step}, {"skipped_nonfinite", step.batch.where}});
      if (++skipped_in_a_row >= kMaxSkippedInARow)
        fail("step {}: {} batches in a row had a non-finite loss or gradient; stopping", state.step + 1,
             skipped_in_a_row);
      continue;
    }
    skipped_in_a_row = 0;
    ++state.step;
    ++window_steps;
    state.tokens_seen += step.batch.tokens;
    window_tokens += step.batch.tokens;
    const float loss_value = float(step.cross_entropy);
    summary.last_loss = loss_value;
    auto now = std::chrono::steady_clock::now();
    state.elapsed_seconds = elapsed_before + std::chrono::duration<double>(now - clock).count();
    bool last = state.step == max_steps;
    if (state.step % cfg.train.log_every == 0 || last) {
      double window = std::chrono::duration<double>(now - window_start).count();
      double tps = window > 0 ? window_tokens / window : 0;
      nlohmann::json line = {{"step", state.step},       {"epoch", epoch},
                             {"loss", loss_value},       {"lr", lr},
                             {"tokens_per_second", tps}, {"elapsed", state.elapsed_seconds}};
      if (mc.experts > 0) line["aux_loss"] = step.aux_loss;
      if (half) line["loss_scale"] = scaler.scale();
      if (comm.size() > 1) {
        // Per step of the window: rank 0's wait for communication after backward, and what it sent.
        line["comm_wait_seconds"] = window_comm_wait / double(window_steps);
        line["comm_bytes"] = window_comm_bytes / double(window_steps);
        line["step_seconds"] = window / double(window_steps);
      }
      if (lead) append_jsonl(metrics_path, line);
      if (!options.quiet && lead)
        progress.update({state.step, max_steps, epoch, loss_value, lr, tps, state.elapsed_seconds});
      window_tokens = window_comm_wait = window_comm_bytes = 0;
      window_steps = 0;
      window_start = now;
    }
    if (cfg.train.eval_every > 0 && (state.step % cfg.train.eval_every == 0 || last) && evaluate()) {
      say(fmt::format("early stopping: no better {} for {} evaluations (best at step {})",
                      cfg.train.best_metric, state.evaluations_since_best, state.best_step));
      summary.stopped_early = true;
      break;
    }
    if (cfg.train.checkpoint_every > 0 && state.step % cfg.train.checkpoint_every == 0 && !last) save();
  }
  save();
  if (!options.quiet && lead) progress.finish();
  summary.steps = state.step;
  summary.best_step = state.best_step;
  if (!summary.interrupted && lead) final_test(summary);
  return summary;
}

}  // namespace tfm::train
