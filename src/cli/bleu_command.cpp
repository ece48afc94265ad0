#include "cli/bleu_command.h"

#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/edit_distance.h"
#include "metrics/segment_file.h"

namespace tfm::cli {
namespace {

// A score as sacreBLEU's JSON output gives it: float(f"{score:.2f}").
double rounded_to_hundredths(double score) { return std::stod(fmt::format("{:.2f}", score)); }

}  // namespace

int cmd_bleu(const BleuCommandOptions& options) {
  const std::vector<std::string> hypotheses = metrics::read_segments(options.hyp_path);
  if (hypotheses.empty()) fail("{}: the hypothesis file has no lines", options.hyp_path);
  std::vector<std::vector<std::string>> references;
  for (const std::string& path : options.ref_paths) {
    references.push_back(metrics::read_segments(path, options.ref_column));
    if (references.back().size() != hypotheses.size())
      fail("{} has {} lines but {} has {}: hypotheses and references must be line-parallel", options.hyp_path,
           hypotheses.size(), path, references.back().size());
  }

  const metrics::BleuScore bleu = metrics::corpus_bleu(hypotheses, references);
  const metrics::ChrfScore chrf = metrics::corpus_chrf(hypotheses, references);
  metrics::ErrorCounts words, chars;
  if (options.all) {
    words = metrics::word_errors(hypotheses, references.front());
    chars = metrics::char_errors(hypotheses, references.front());
  }

  if (options.json) {
    nlohmann::json j = {{"bleu", rounded_to_hundredths(bleu.score)},
                        {"chrf", rounded_to_hundredths(chrf.score)},
                        {"precisions", bleu.precisions},
                        {"bp", bleu.bp},
                        {"ratio", bleu.ratio},
                        {"hyp_len", bleu.stats.hyp_len},
                        {"ref_len", bleu.stats.ref_len},
                        {"bleu_line", bleu.format()},
                        {"chrf_line", chrf.format()}};
    if (options.all) {
      j["wer"] = words.rate();  // NaN (no reference words at all) is written as null
      j["cer"] = chars.rate();
    }
    std::puts(j.dump().c_str());
    return 0;
  }
  std::puts(bleu.format().c_str());
  std::puts(chrf.format().c_str());
  if (options.all) {
    std::puts(fmt::format("WER = {:.4f} (errors = {} ref_words = {})", words.rate(), words.errors,
                          words.reference_length)
                  .c_str());
    std::puts(fmt::format("CER = {:.4f} (errors = {} ref_chars = {})", chars.rate(), chars.errors,
                          chars.reference_length)
                  .c_str());
  }
  return 0;
}

}  // namespace tfm::cli
