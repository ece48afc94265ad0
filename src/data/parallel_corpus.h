// Parallel corpora: one sentence pair per line, "source<TAB>target", UTF-8, plain or gzip.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tfm::data {

struct SentencePair {
  std::string src, tgt;
  int64_t line;  // 1-based line number in the file
};

struct CorpusStats {
  int64_t lines = 0;               // lines read
  int64_t pairs = 0;               // pairs returned
  int64_t skipped_empty_line = 0;  // empty lines
  int64_t skipped_empty_side = 0;  // lines whose source or target is empty
};

// Reads every pair of a TSV corpus. Throws tfm::Error naming the file and line for a line without a tab
// or with more than one, invalid UTF-8 (with the byte offset in the line), or a file with no pair at all.
// Empty lines and lines with an empty side are skipped and counted in `stats`.
std::vector<SentencePair> read_parallel_tsv(const std::string& path, CorpusStats* stats = nullptr);

}  // namespace tfm::data
