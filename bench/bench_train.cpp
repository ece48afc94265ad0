// Training / inference throughput, the same workloads as the PyTorch peers on random token batches:
// - seed-base, small: the seed Transformer as shared/peers/bench_torch.py runs it: forward +
//   label-smoothed cross-entropy + backward + Adam(lr 1e-4, eps 1e-9) per step; --mode infer runs the
//   forward pass only; --mode greedy decodes --gen tokens for one source. Tokens: source + target.
// - gpt2-small: GPT-2 124M as shared/peers/gpt2_torch.py runs it (no dropout, cross-entropy, AdamW lr
//   1e-4 without weight decay), batch 4 x context 256. Tokens: batch x context.
// Prints one JSON line with the median step time, tokens/s, achieved GFLOP/s and peak RSS, so the two can
// be compared side by side. --precision bfloat16 trains with bfloat16 products (train.precision);
// --attention dense runs attention through the unfused kernel instead of the
// flash one (for the comparison that keeps it).
//
//   build/bench/tfm_bench_train --config seed-base --mode train --threads 2
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "bench_util.h"
#include "gpt2_small.h"
#include "infer/model_decoder.h"
#include "infer/sampling.h"
#include "kernels/cpu/gemm.h"
#include "models/family.h"
#include "models/transformer.h"
#include "train/optimizer.h"

namespace {

using namespace tfm;
using bench::peak_rss_mb;

struct BenchConfig {
  int64_t d_model, heads, layers, d_ff, vocab, seq_len, batch;
  bool decoder_only = false;
};
const std::map<std::string, BenchConfig> kConfigs = {
    {"seed-base", {512, 8, 6, 2048, 16000, 128, 8}},
    {"small", {256, 4, 3, 1024, 8000, 64, 32}},
    {"gpt2-small", {768, 12, 12, 3072, 50257, 256, 4, true}},
};

// Matrix-multiply FLOPs of one forward pass (2 per multiply-add): projections, attention products
// (counted in full, as the peers compute them, also under a causal mask), FFN and the vocabulary
// projection. A training step is counted as 3x (backward = 2x forward).
double forward_flops(const BenchConfig& c) {
  double d = double(c.d_model), ff = double(c.d_ff), S = double(c.seq_len), T = S, B = double(c.batch);
  double enc = c.layers * (B * S * (4 * d * d + 2 * d * ff) + B * 2 * S * S * d);
  if (c.decoder_only) return 2 * (enc + B * T * d * double(c.vocab));
  double dec = c.layers * (B * T * (4 * d * d + 2 * d * ff) + B * 2 * T * T * d  // self-attention, FFN
                           + B * T * 2 * d * d + B * S * 2 * d * d + B * 2 * T * S * d);  // cross-attention
  return 2 * (enc + dec + B * T * d * double(c.vocab));
}

// GPT-2 124M as Hugging Face configures it, without dropout (the peer has none).
ModelConfig gpt2_config() {
  nlohmann::json config = bench::gpt2_small_config();
  config["resid_pdrop"] = config["embd_pdrop"] = config["attn_pdrop"] = 0.0;
  return find_family(config)->config(config);
}

ModelConfig seed_config(const BenchConfig& bc, int gen) {
  ModelConfig mc;
  mc.src_vocab = mc.tgt_vocab = bc.vocab;
  mc.d_model = bc.d_model;
  mc.heads = int(bc.heads);
  mc.d_ff = bc.d_ff;
  mc.encoder_layers = mc.decoder_layers = int(bc.layers);
  mc.max_len = std::max<int64_t>(bc.seq_len, gen + 1);
  mc.dropout = 0.1f;
  mc.pad_id = 0;
  mc.bos_id = 1;
  mc.eos_id = 2;
  return mc;
}

Tensor random_ids(std::mt19937_64& g, int64_t rows, int64_t cols, int64_t vocab) {
  Tensor t = Tensor::empty_persistent({rows, cols}, DType::I64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = 3 + int64_t(g() % uint64_t(vocab - 3));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tfm training/inference benchmark (same workload as shared/peers/bench_torch.py)"};
  std::string config = "small", mode = "train";
  int threads = 2, warmup = 3, steps = 7, gen = 64;
  std::string attention = "flash", precision = "float32";
  app.add_option("--config", config)->check(CLI::IsMember({"seed-base", "small", "gpt2-small"}));
  app.add_option("--attention", attention)->check(CLI::IsMember({"flash", "dense"}));
  app.add_option("--precision", precision, "of the training step's matrix products (train.precision)")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  app.add_option("--mode", mode)->check(CLI::IsMember({"train", "infer", "greedy"}));
  app.add_option("--threads", threads);
  app.add_option("--warmup", warmup);
  app.add_option("--steps", steps);
  app.add_option("--gen", gen);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  ag::set_attention_kernel(attention == "flash" ? ag::AttentionKernel::Flash : ag::AttentionKernel::Dense);

  const BenchConfig bc = kConfigs.at(config);
  TFM_CHECK(!bc.decoder_only || mode != "greedy", "--mode greedy is for the encoder-decoder configs");
  const ModelConfig mc = bc.decoder_only ? gpt2_config() : seed_config(bc, gen);
  Transformer model(mc);
  model.init_weights(0);
  train::AdamOptions ao;
  ao.lr = 1e-4f;
  ao.eps = bc.decoder_only ? 1e-8f : 1e-9f;
  ao.decoupled = bc.decoder_only;  // AdamW (weight decay 0), as the GPT-2 peer
  train::Adam opt(model.parameters().list(), ao);
  std::mt19937_64 g(0);
  Rng rng(1);
  ag::Tape tape;
  std::vector<double> times;
  for (int i = 0; i < warmup + steps; ++i) {
    Tensor src = random_ids(g, mode == "greedy" ? 1 : bc.batch, bc.seq_len, bc.vocab);
    Tensor tgt = random_ids(g, bc.batch, bc.seq_len, bc.vocab),
           label = random_ids(g, bc.batch, bc.seq_len, bc.vocab);
    auto t0 = std::chrono::steady_clock::now();
    if (mode == "train") {
      tape.reset();
      {
        kernels::GemmPrecisionScope scope_precision(precision == "bfloat16" ? kernels::GemmPrecision::BF16
                                                                            : kernels::GemmPrecision::F32);
        ag::Tape::Scope scope(tape);
        nn::Context c{tape, true, &rng};
        ag::Var loss = bc.decoder_only
                           ? ag::cross_entropy(model.project(c, model.decode_only(c, tgt)), label, -100, 0.0f)
                           : model.loss(c, src, tgt, label, 0.1f);
        tape.backward(loss);
      }
      opt.step(1e-4f);
      opt.zero_grad();
    } else if (mode == "infer") {
      tape.reset();
      ag::Tape::Scope scope(tape);
      ag::NoGrad off(tape);
      nn::Context c{tape, false, nullptr};
      if (bc.decoder_only)
        model.project(c, model.decode_only(c, tgt));
      else
        model.project(c, model.decode(c, model.encode(c, src), src, tgt));
    } else {
      std::vector<int64_t> source(src.data<int64_t>(), src.data<int64_t>() + src.numel());
      infer::ModelDecoder decoder(model, {source}, {});
      infer::GenerationRules rules;  // no EOS: exactly `gen` tokens
      rules.max_new_tokens = gen;
      infer::greedy_search(decoder, {{mc.bos_id}}, rules);
    }
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  double med = times[times.size() / 2];
  double tokens = mode == "greedy"  ? double(gen)
                  : bc.decoder_only ? double(bc.batch * bc.seq_len)
                                    : 2.0 * double(bc.batch * bc.seq_len);
  double flops = mode == "train" ? 3 * forward_flops(bc) : mode == "infer" ? forward_flops(bc) : 0.0;
  nlohmann::json j = {{"config", config},
                      {"attention", attention},
                      {"precision", precision},
                      {"mode", mode},
                      {"threads", threads},
                      {"params_M", double(model.parameters().numel()) / 1e6},
                      {"step_ms_median", med * 1e3},
                      {"step_ms_min", times.front() * 1e3},
                      {"step_ms_max", times.back() * 1e3},
                      {"steps", times.size()},
                      {"tok_per_s", tokens / med},
                      {"gflops", flops / med / 1e9},
                      {"peak_rss_MB", peak_rss_mb()}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
