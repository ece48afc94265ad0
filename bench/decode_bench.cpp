// Batch-1 decoding speed with the KV cache, as the PyTorch peer (bench/peers/torch_decode.py) measures it:
//
//   kjv    lm-kjv's six scores.json prompts, each continued greedily by --max-new-tokens (40) tokens,
//          --repeat times (after one untimed warm-up); generated tokens per second over the decode calls,
//          and how many continuations equal Hugging Face's ids.
//   pp-tg  llama-bench's pp / tg: one forward over a --pp token prompt (logits of its last position), and
//          --tg tokens generated one at a time from an empty context, each timed --repeat times, on
//          --model (a folder) or on --shape gpt2-small (12 x 768, 12 heads, vocab 50257, random weights),
//          with --weights f32 (as loaded) or bf16 / f16 / int8 / q8_0 / q4_0 (as tfm quantize makes them).
//
// One JSON line per measurement. Threads: --threads (default: OMP's).
//   build/bench/tfm_bench_decode kjv --threads 1
//   build/bench/tfm_bench_decode pp-tg --shape gpt2-small --pp 512 --tg 128 --threads 2
#include <omp.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gpt2_small.h"
#include "infer/generate.h"
#include "infer/model_decoder.h"
#include "models/family.h"
#include "models/load_model.h"
#include "models/quantize.h"

namespace {

using namespace tfm;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

void print(nlohmann::json j) {
  j["threads"] = omp_get_max_threads();
  j["peak_rss_mib"] = std::round(peak_rss_mib() * 10) / 10;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

int run_kjv(const std::string& dir, int repeat, int64_t max_new_tokens) {
  LoadedModel m = load_model(dir);
  std::ifstream in(dir + "/scores.json");
  if (!in) fail("{}/scores.json: cannot open", dir);
  const nlohmann::json prompts = nlohmann::json::parse(in)["greedy"];
  infer::GenerateOptions options;
  options.rules.max_new_tokens = max_new_tokens;
  options.rules.eos_id = m.model->config().eos_id;
  auto continue_prompt = [&](const nlohmann::json& p) {
    return infer::generate(*m.model, {p["prompt_ids"].get<std::vector<int64_t>>()}, options)[0];
  };
  continue_prompt(prompts[0]);  // warm-up: thread pool, first allocations
  int64_t tokens = 0, equal = 0;
  double wall = 0;
  for (int r = 0; r < repeat; ++r) {
    equal = 0;
    for (const nlohmann::json& p : prompts) {
      const auto start = Clock::now();
      const std::vector<int64_t> ids = continue_prompt(p);
      wall += seconds_since(start);
      tokens += int64_t(ids.size());
      std::vector<int64_t> full = p["prompt_ids"].get<std::vector<int64_t>>();
      full.insert(full.end(), ids.begin(), ids.end());
      equal += full == p["greedy_ids"].get<std::vector<int64_t>>();
    }
  }
  nlohmann::json j = {{"engine", "tfm"},
                      {"task", "kjv-greedy"},
                      {"prompts", prompts.size()},
                      {"repeat", repeat},
                      {"max_new_tokens", max_new_tokens},
                      {"generated_tokens", tokens},
                      {"wall_s", wall},
                      {"tokens_per_s", double(tokens) / wall}};
  if (max_new_tokens == 40) j["ids_equal"] = equal;
  print(j);
  return 0;
}

std::unique_ptr<Transformer> gpt2_small() {
  const nlohmann::json config = bench::gpt2_small_config();
  const Family* family = find_family(config);
  auto model = std::make_unique<Transformer>(family->config(config));
  model->init_weights(1);
  return model;
}

void report_speed(const std::string& test, const std::string& model, int64_t tokens,
                  const std::vector<double>& times) {
  std::vector<double> rates;
  double mean = 0;
  for (double t : times) rates.push_back(double(tokens) / t), mean += rates.back() / double(times.size());
  print({{"engine", "tfm"}, {"model", model}, {"test", test}, {"tokens_per_s", mean}, {"runs", rates}});
}

int run_pp_tg(const std::string& dir, const std::string& shape, const std::string& weights, int64_t pp,
              int64_t tg, int repeat) {
  std::unique_ptr<Transformer> model;
  if (shape == "gpt2-small") {
    model = gpt2_small();
  } else {
    model = std::move(load_model(dir).model);
  }
  if (weights != "f32") quantize_model(*model, kernels::format_named(weights));
  const std::string name = (shape.empty() ? dir : shape) + (weights != "f32" ? " " + weights : "");
  const ModelConfig& c = model->config();
  if (pp > c.max_len || tg > c.max_len)
    fail("pp {} and tg {} must fit the model's context of {}", pp, tg, c.max_len);
  std::mt19937_64 gen(1);
  std::vector<int64_t> prompt(static_cast<size_t>(pp));
  for (int64_t& t : prompt) t = int64_t(gen() % uint64_t(c.tgt_vocab));
  const int64_t row = 0;
  {  // warm-up
    infer::ModelDecoder warm(*model, 1, {.max_positions = 16, .max_rows = 1});
    const std::vector<std::vector<int64_t>> p = {std::vector<int64_t>(prompt.begin(), prompt.begin() + 8)};
    warm.prefill({&row, 1}, p);
  }
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    infer::ModelDecoder decoder(*model, 1, {.max_positions = pp, .max_rows = 1});
    const std::vector<std::vector<int64_t>> p = {prompt};
    const auto start = Clock::now();
    decoder.prefill({&row, 1}, p);
    times.push_back(seconds_since(start));
  }
  report_speed("pp" + std::to_string(pp), name, pp, times);
  times.clear();
  for (int r = 0; r < repeat; ++r) {
    infer::ModelDecoder decoder(*model, 1, {.max_positions = tg, .max_rows = 1});
    int64_t token = prompt[0];
    const auto start = Clock::now();
    for (int64_t i = 0; i < tg; ++i) {  // from an empty context, one token per step, logits every step
      const Tensor logits = decoder.step({&row, 1}, {&token, 1});
      const float* z = logits.f32();
      token = int64_t(std::max_element(z, z + c.tgt_vocab) - z);
    }
    times.push_back(seconds_since(start));
  }
  report_speed("tg" + std::to_string(tg), name, tg, times);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("batch-1 decoding benchmark");
  app.require_subcommand(1);
  int threads = 0, repeat = 0;
  app.add_option("--threads", threads, "OpenMP threads (0: the default)");
  std::string model = std::string(TFM_BENCH_SHARED_DIR) + "/models/lm-kjv", shape;
  int64_t max_new_tokens = 40, pp = 512, tg = 128;
  std::string weights = "f32";
  auto* kjv = app.add_subcommand("kjv", "lm-kjv's six prompts, greedy");
  kjv->add_option("--model", model, "lm-kjv folder");
  kjv->add_option("--max-new-tokens", max_new_tokens);
  kjv->add_option("--repeat", repeat, "timed repetitions (default 10)");
  auto* pptg = app.add_subcommand("pp-tg", "prompt processing and token generation, batch 1");
  pptg->add_option("--model", model, "model folder (default lm-kjv)");
  pptg->add_option("--shape", shape, "gpt2-small: random weights of that shape instead of --model")
      ->check(CLI::IsMember({"gpt2-small"}));
  pptg->add_option("--weights", weights,
                   "f32 (as loaded), or bf16 / f16 / int8 / q8_0 / q4_0 as tfm quantize makes them")
      ->check(CLI::IsMember({"f32", "bf16", "int8", "int4"}));
  pptg->add_option("--pp", pp, "prompt tokens");
  pptg->add_option("--tg", tg, "generated tokens");
  pptg->add_option("--repeat", repeat, "timed repetitions (default 3)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  try {
    if (kjv->parsed()) return run_kjv(model, repeat > 0 ? repeat : 10, max_new_tokens);
    return run_pp_tg(model, shape, weights, pp, tg, repeat > 0 ? repeat : 3);
  } catch (const tfm::Error& e) {
    std::fprintf(stderr, "tfm_bench_decode: %s\n", e.what());
    return 1;
  }
}
