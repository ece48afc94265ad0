#include "data/parallel_corpus.h"

#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"
#include "data/line_reader.h"

namespace tfm::data {

CorpusReader::CorpusReader(std::string path, CorpusOptions options)
    : reader_(std::make_unique<LineReader>(std::move(path))), options_(options) {}

CorpusReader::~CorpusReader() = default;

bool CorpusReader::next(SentencePair& record) {
  const std::string& path = reader_->path();
  while (reader_->next(line_)) {
    const int64_t number = reader_->line_number();
    ++stats_.lines;
    if (auto bad = find_invalid_utf8(line_)) {
      switch (options_.utf8) {
        case Utf8Policy::Error:
          fail("{}:{}: invalid UTF-8 at byte offset {}", path, number, *bad);
        case Utf8Policy::Skip:
          ++stats_.skipped_invalid_utf8;
          continue;
        case Utf8Policy::Replace:
          line_ = replace_invalid_utf8(line_, &stats_.replaced_invalid_utf8);
          break;
      }
    }
    if (line_.empty()) {
      ++stats_.skipped_empty_line;
      continue;
    }
    if (options_.format == CorpusFormat::Text) {
      if (options_.column > 0) {
        size_t begin = 0;
        for (int field = 1; field < options_.column; ++field) {
          begin = line_.find('\t', begin);
          if (begin == std::string::npos)
            fail("{}:{}: no tab-separated field {} (the line has {})", path, number, options_.column, field);
          ++begin;
        }
        record.src.assign(line_, begin, line_.find('\t', begin) - begin);
        if (record.src.empty()) {
          ++stats_.skipped_empty_side;
          continue;
        }
      } else {
        record.src = line_;
      }
      record.tgt.clear();
    } else {
      const size_t tab = line_.find('\t');
      if (tab == std::string::npos) fail("{}:{}: no tab between source and target", path, number);
      if (line_.find('\t', tab + 1) != std::string::npos)
        fail("{}:{}: more than one tab (expected source<TAB>target)", path, number);
      if (tab == 0 || tab + 1 == line_.size()) {
        ++stats_.skipped_empty_side;
        continue;
      }
      record.src.assign(line_, 0, tab);
      record.tgt.assign(line_, tab + 1);
    }
    record.line = number;
    ++stats_.records;
    return true;
  }
  if (stats_.records == 0)
    fail("{}: no {}", path, options_.format == CorpusFormat::Text ? "non-empty lines" : "sentence pairs");
  return false;
}

std::vector<SentencePair> read_parallel_tsv(const std::string& path, CorpusStats* stats, Utf8Policy utf8) {
  CorpusReader reader(path, {CorpusFormat::ParallelTsv, utf8});
  std::vector<SentencePair> pairs;
  SentencePair pair;
  while (reader.next(pair)) pairs.push_back(std::move(pair));
  if (stats) *stats = reader.stats();
  return pairs;
}

}  // namespace tfm::data
