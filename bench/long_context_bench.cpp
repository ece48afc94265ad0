// A decoder-only model on one long sequence, per attention variant: dense softmax (the fused flash kernel,
// or the unfused kernel that materialises the [T, T] probabilities), a sliding window, block-sparse (the
// window plus global tokens) and linear attention. The model is recipes/lm-kjv-tiny.toml's Llama layout
// made wider (d_model 256, 4 heads of 64, 4 layers, SwiGLU 704, RoPE, vocabulary 4,000).
//   --mode train: one training step on a batch of one sequence of --len tokens (forward, cross-entropy,
//                 backward, AdamW), median of --steps after one warm-up step.
//   --mode decode: a prompt of --len - 72 tokens through the KV cache, then 8 untimed one-token steps and
//                 64 timed ones: the time per generated token, and the KV cache's size (a ring of the
//                 window with sliding_window; linear attention's running sums).
// Prints one JSON line with the peak RSS of the process: run one variant and length per process.
//
//   for v in dense window block-sparse linear; do
//     build/bench/tfm_bench_long_context --variant $v --len 4096; done
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "bench_util.h"
#include "infer/model_decoder.h"
#include "models/transformer.h"
#include "train/optimizer.h"

namespace {

using namespace tfm;
using bench::peak_rss_mb;

ModelConfig long_context_config(const std::string& variant, int64_t len, int64_t window, int64_t global) {
  ModelConfig c;
  c.arch = Arch::DecoderOnly;
  c.src_vocab = c.tgt_vocab = 4000;
  c.d_model = 256;
  c.heads = c.kv_heads = 4;
  c.d_ff = 704;
  c.encoder_layers = 0;
  c.decoder_layers = 4;
  c.max_len = len;
  c.dropout = c.attention_dropout = c.activation_dropout = 0.0f;
  c.norm = NormType::RMSNorm;
  c.norm_bias = false;
  c.positions = PositionKind::RoPE;
  c.activation = Activation::SwiGLU;
  c.ffn_bias = c.output_bias = false;
  c.tie_output = true;
  if (variant == "window" || variant == "block-sparse") c.sliding_window = window;
  if (variant == "block-sparse") c.global_tokens = global;
  if (variant == "linear") c.attention = AttentionKind::Linear;
  return c;
}

Tensor random_ids(std::mt19937_64& g, int64_t len, int64_t vocab) {
  Tensor t = Tensor::empty_persistent({1, len}, DType::I64);
  std::uniform_int_distribution<int64_t> d(3, vocab - 1);
  for (int64_t i = 0; i < len; ++i) t.data<int64_t>()[i] = d(g);
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("long-sequence training step or decoding, per attention variant: time and peak memory");
  int64_t len = 4096, window = 256, global = 64;
  int threads = 2, steps = 3;
  std::string variant = "dense", mode = "train";
  app.add_option("--len", len)->check(CLI::Range(128, 1 << 20));
  app.add_option("--variant", variant)
      ->check(CLI::IsMember({"dense", "dense-unfused", "window", "block-sparse", "linear"}));
  app.add_option("--mode", mode)->check(CLI::IsMember({"train", "decode"}));
  app.add_option("--window", window, "sliding window (window, block-sparse)")->check(CLI::PositiveNumber);
  app.add_option("--global", global, "global tokens (block-sparse)")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads)->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed training steps")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  ag::set_attention_kernel(variant == "dense-unfused" ? ag::AttentionKernel::Dense
                                                      : ag::AttentionKernel::Flash);

  Transformer model(long_context_config(variant, len, window, global));
  model.init_weights(0);
  std::mt19937_64 g(0);
  nlohmann::json out{{"variant", variant}, {"mode", mode}, {"len", len}, {"threads", threads}};
  if (variant == "window" || variant == "block-sparse") out["window"] = window;
  if (variant == "block-sparse") out["global_tokens"] = global;
  ag::Tape tape;
  if (mode == "train") {
    train::AdamOptions ao;
    ao.lr = 1e-4f;
    ao.decoupled = true;
    train::Adam opt(model.parameters().list(), ao);
    Rng rng(1);
    std::vector<double> ms;
    for (int s = 0; s < steps + 1; ++s) {
      const Tensor ids = random_ids(g, len, 4000), labels = random_ids(g, len, 4000);
      const auto t0 = std::chrono::steady_clock::now();
      tape.reset();
      {
        ag::Tape::Scope scope(tape);
        nn::Context c{tape, true, &rng};
        tape.backward(ag::cross_entropy(model.project(c, model.decode_only(c, ids)), labels, -100, 0.0f));
      }
      opt.step(1e-4f);
      opt.zero_grad();
      if (s > 0)
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    out["step_ms"] = median(ms);
    out["tokens_per_second"] = double(len) / (median(ms) / 1000.0);
  } else {
    // The first steps after the prompt return the prompt's step memory to the system: untimed.
    constexpr int64_t kGenerated = 64, kUntimed = 8;
    infer::ModelDecoder decoder(model, 1, {.max_positions = len, .max_rows = 1});
    const Tensor prompt_ids = random_ids(g, len - kGenerated - kUntimed, 4000);
    const std::vector<int64_t> prompt(prompt_ids.data<int64_t>(),
                                      prompt_ids.data<int64_t>() + prompt_ids.numel());
    auto step = [&](int64_t t) { decoder.step(std::vector<int64_t>{0}, std::vector<int64_t>{3 + t}); };
    auto t0 = std::chrono::steady_clock::now();
    decoder.prefill(std::vector<int64_t>{0}, std::vector<std::vector<int64_t>>{prompt});
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t t = 0; t < kUntimed; ++t) step(t);
    auto t2 = std::chrono::steady_clock::now();
    for (int64_t t = 0; t < kGenerated; ++t) step(t);
    auto t3 = std::chrono::steady_clock::now();
    const ModelConfig& c = model.config();
    out["prefill_ms"] = std::chrono::duration<double, std::milli>(t1 - t0).count();
    out["ms_per_token"] = std::chrono::duration<double, std::milli>(t3 - t2).count() / double(kGenerated);
    out["kv_cache_MB"] = double(decoder.cache().stored_positions() * c.decoder_layers * 2 *
                                c.key_value_heads() * c.attention_head_dim() * int64_t(sizeof(float))) /
                         (1024.0 * 1024.0);
  }
  out["peak_rss_MB"] = peak_rss_mb();
  std::printf("%s\n", out.dump().c_str());
}
