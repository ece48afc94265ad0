// Training corpora, read line by line (UTF-8, plain or gzip; see LineReader):
//   ParallelTsv: one sentence pair per line, "source<TAB>target". A line without a tab or with more than
//                one is an error naming the file and line; a line with an empty side is skipped and counted.
//   Text:        one document per line (tabs are ordinary characters), or with `column` = N >= 1 the N-th
//                tab-separated field of each line (a line with fewer fields is an error naming it).
// Empty lines are skipped and counted in both. A file with no usable line is an error naming the file.
// Invalid UTF-8 is an error naming the file, line and byte offset in the line, unless a Utf8Policy says
// to replace or skip it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tfm::data {

enum class CorpusFormat { ParallelTsv, Text };

enum class Utf8Policy {
  Error,    // throw tfm::Error naming the file, line and byte offset
  Replace,  // replace each ill-formed sequence by U+FFFD (see replace_invalid_utf8 in core/utf8.h)
  Skip,     // skip the line
};

struct CorpusOptions {
  CorpusFormat format = CorpusFormat::ParallelTsv;
  Utf8Policy utf8 = Utf8Policy::Error;
  int column = 0;  // Text: 0 = the whole line, N = the N-th tab-separated field
  bool operator==(const CorpusOptions&) const = default;
};

// One usable line. Text: the line is in `src` and `tgt` is empty.
struct SentencePair {
  std::string src, tgt;
  int64_t line;  // 1-based line number in the file
};

struct CorpusStats {
  int64_t lines = 0;                  // lines read
  int64_t records = 0;                // pairs (ParallelTsv) or lines (Text) returned
  int64_t skipped_empty_line = 0;     // empty lines
  int64_t skipped_empty_side = 0;     // ParallelTsv lines whose source or target is empty
  int64_t skipped_invalid_utf8 = 0;   // lines skipped under Utf8Policy::Skip
  int64_t replaced_invalid_utf8 = 0;  // U+FFFD substitutions under Utf8Policy::Replace
  int64_t skipped() const { return skipped_empty_line + skipped_empty_side + skipped_invalid_utf8; }
  bool operator==(const CorpusStats&) const = default;
};

class LineReader;

// Streams the usable lines of a corpus, so that no more than one line is held at a time.
class CorpusReader {
 public:
  CorpusReader(std::string path, CorpusOptions options);  // throws tfm::Error if the file cannot be opened
  ~CorpusReader();
  CorpusReader(const CorpusReader&) = delete;
  CorpusReader& operator=(const CorpusReader&) = delete;

  // The next usable line into `record`; false at the end of the file. Throws tfm::Error for a malformed
  // line (see above), and at the end when no line at all was usable.
  bool next(SentencePair& record);
  const CorpusStats& stats() const { return stats_; }

 private:
  std::unique_ptr<LineReader> reader_;
  CorpusOptions options_;
  CorpusStats stats_;
  std::string line_;
};

// Reads every pair of a TSV corpus (see above); `stats`, when given, receives the counts.
std::vector<SentencePair> read_parallel_tsv(const std::string& path, CorpusStats* stats = nullptr,
                                            Utf8Policy utf8 = Utf8Policy::Error);

}  // namespace tfm::data
