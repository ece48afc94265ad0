// `tfm bleu`: corpus BLEU and chrF of a hypothesis file against reference files, printed as sacreBLEU
// prints them (or as one JSON object).
#pragma once

#include <string>
#include <vector>

namespace tfm::cli {

struct BleuCommandOptions {
  std::string hyp_path;
  std::vector<std::string> ref_paths;  // one or more reference sets, each with one line per hypothesis
  int ref_column = 0;                  // 0: whole lines; N: the N-th tab-separated field of each line
  bool json = false;
  bool all = false;  // also WER and CER (against the first reference)
};

int cmd_bleu(const BleuCommandOptions& options);

}  // namespace tfm::cli
