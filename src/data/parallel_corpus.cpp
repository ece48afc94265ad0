#include "data/parallel_corpus.h"

#include <string_view>

#include "core/error.h"
#include "core/utf8.h"
#include "data/line_reader.h"

namespace tfm::data {

std::vector<SentencePair> read_parallel_tsv(const std::string& path, CorpusStats* stats) {
  CorpusStats counts;
  std::vector<SentencePair> pairs;
  LineReader reader(path);
  std::string line;
  while (reader.next(line)) {
    const int64_t number = reader.line_number();
    ++counts.lines;
    if (auto bad = find_invalid_utf8(line))
      fail("{}:{}: invalid UTF-8 at byte offset {}", path, number, *bad);
    if (line.empty()) {
      ++counts.skipped_empty_line;
      continue;
    }
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) fail("{}:{}: no tab between source and target", path, number);
    if (line.find('\t', tab + 1) != std::string::npos)
      fail("{}:{}: more than one tab (expected source<TAB>target)", path, number);
    std::string_view src(line.data(), tab), tgt(line.data() + tab + 1, line.size() - tab - 1);
    if (src.empty() || tgt.empty()) {
      ++counts.skipped_empty_side;
      continue;
    }
    pairs.push_back({std::string(src), std::string(tgt), number});
  }
  if (pairs.empty()) fail("{}: no sentence pairs", path);
  counts.pairs = int64_t(pairs.size());
  if (stats) *stats = counts;
  return pairs;
}

}  // namespace tfm::data
