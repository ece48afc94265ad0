// Time to tokenise a parallel corpus into a token file with the word-level tokenizers trained on it, and
// to open (map and validate) the result. Prints one JSON line; the best of --repeats builds.
//
//   OMP_NUM_THREADS=2 build/bench/tfm_bench_token_file --corpus ../shared/data/bible-en-es/train.tsv
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/token_file.h"
#include "tokenize/word_level.h"

namespace {

using namespace tfm;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("token file build benchmark");
  std::string corpus, out = "/tmp/tfm_bench.tokens";
  int repeats = 3;
  app.add_option("--corpus", corpus, "source<TAB>target corpus")->required();
  app.add_option("--out", out, "where to write the token file");
  app.add_option("--repeats", repeats, "builds to time");
  CLI11_PARSE(app, argc, argv);

  try {
    const std::vector<data::SentencePair> pairs = data::read_parallel_tsv(corpus);
    std::vector<std::string> src, tgt;
    for (const data::SentencePair& p : pairs) {
      src.push_back(p.src);
      tgt.push_back(p.tgt);
    }
    const auto en = tokenize::WordLevelTokenizer::train(src, {});
    const auto es = tokenize::WordLevelTokenizer::train(tgt, {});
    const data::TokenFileSpec spec{corpus, {}, {&en, &es}};
    auto start = std::chrono::steady_clock::now();
    (void)en.hash();
    (void)es.hash();
    const double hash_seconds = seconds_since(start);
    double best_build = 1e30;
    for (int r = 0; r < repeats; ++r) {
      start = std::chrono::steady_clock::now();
      data::TokenFile::build(out, spec);
      best_build = std::min(best_build, seconds_since(start));
    }
    start = std::chrono::steady_clock::now();
    const data::TokenFile file = data::TokenFile::open(out);
    const double open_seconds = seconds_since(start);
    const nlohmann::json result = {
        {"corpus", corpus},
        {"threads", omp_get_max_threads()},
        {"records", file.records()},
        {"tokens", file.tokens()},
        {"build_seconds", best_build},
        {"of_which_tokenizer_hashes_seconds", hash_seconds},
        {"open_seconds", open_seconds},
        {"file_bytes", std::filesystem::file_size(out)},
        {"id_bytes", file.id_bytes()},
        {"ids_bytes_if_int32", file.tokens() * 4},
        {"corpus_bytes", std::filesystem::file_size(corpus)},
    };
    std::printf("%s\n", result.dump().c_str());
    std::filesystem::remove(out);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
