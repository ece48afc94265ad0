// Byte-level BPE encoding throughput: both sides of bible-en-es/train.tsv (each cell one text), with the
// mt-en-es tokenizer and GPT-2's. For each: one pass on a fresh tokenizer (cold pre-token cache), then
// repeated passes with 1 thread and with 2 threads (the texts split in halves), printing MB/s in all and
// per thread. --train also times training an 8,000-token BPE on the same texts.
//
//   build/bench/tfm_bench_tokenize --seconds 1 [--train]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tokenize/bpe_trainer.h"
#include "tokenize/tokenizer.h"

namespace {

using namespace tfm;
using Clock = std::chrono::steady_clock;

std::vector<std::string> both_sides(const std::string& tsv_path) {
  std::ifstream file(tsv_path);
  if (!file) throw std::runtime_error("cannot open " + tsv_path);
  std::vector<std::string> texts;
  for (std::string line; std::getline(file, line);) {
    const size_t tab = line.find('\t');
    texts.push_back(line.substr(0, tab));
    if (tab != std::string::npos) texts.push_back(line.substr(tab + 1));
  }
  return texts;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Encodes texts[begin, end) once; returns the number of tokens (so the work cannot be optimised away).
size_t encode_range(const tokenize::Tokenizer& tokenizer, const std::vector<std::string>& texts, size_t begin,
                    size_t end) {
  size_t tokens = 0;
  for (size_t i = begin; i < end; ++i) tokens += tokenizer.encode(texts[i]).size();
  return tokens;
}

// MB/s of encoding every text with `threads` threads, repeated for about `seconds`.
double warm_mb_per_s(const tokenize::Tokenizer& tokenizer, const std::vector<std::string>& texts,
                     double bytes, int threads, double seconds) {
  int passes = 0;
  const Clock::time_point start = Clock::now();
  do {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        encode_range(tokenizer, texts, texts.size() * size_t(t) / size_t(threads),
                     texts.size() * size_t(t + 1) / size_t(threads));
      });
    for (std::thread& worker : workers) worker.join();
    ++passes;
  } while (seconds_since(start) < seconds);
  return bytes * passes / seconds_since(start) / 1e6;
}

void bench_tokenizer(const std::string& name, const std::string& path, const std::vector<std::string>& texts,
                     double bytes, double seconds) {
  const auto tokenizer = tokenize::load_tokenizer(path);
  const Clock::time_point start = Clock::now();
  const size_t tokens = encode_range(*tokenizer, texts, 0, texts.size());
  const double cold = bytes / seconds_since(start) / 1e6;
  const double one = warm_mb_per_s(*tokenizer, texts, bytes, 1, seconds);
  const double two = warm_mb_per_s(*tokenizer, texts, bytes, 2, seconds);
  std::printf(
      "%-9s %9zu tokens  cold %6.1f MB/s  1 thread %6.1f MB/s  2 threads %6.1f MB/s (%5.1f per thread)\n",
      name.c_str(), tokens, cold, one, two, two / 2);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Byte-level BPE encoding throughput"};
  std::string shared = TFM_BENCH_SHARED_DIR;
  double seconds = 1.0;
  bool train = false;
  app.add_option("--shared", shared, "The shared/ folder (data, models, fixtures)");
  app.add_option("--seconds", seconds, "Time per warm measurement");
  app.add_flag("--train", train, "Also time training an 8,000-token BPE on the same texts");
  CLI11_PARSE(app, argc, argv);
  try {
    const std::vector<std::string> texts = both_sides(shared + "/data/bible-en-es/train.tsv");
    double bytes = 0;
    for (const std::string& text : texts) bytes += double(text.size());
    std::printf("%zu texts, %.2f MB\n", texts.size(), bytes / 1e6);
    bench_tokenizer("mt-en-es", shared + "/models/mt-en-es/tokenizer.json", texts, bytes, seconds);
    bench_tokenizer("gpt2", shared + "/fixtures/tokenizers/gpt2/encoder.json", texts, bytes, seconds);
    if (train) {
      const Clock::time_point start = Clock::now();
      const auto trained =
          tokenize::train_bpe(texts, {.vocab_size = 8000, .min_frequency = 2, .special_tokens = {"<pad>"}});
      std::printf("train-bpe vocab %d: %.2f s\n", trained.vocab_size(), seconds_since(start));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
