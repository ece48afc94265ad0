#include "metrics/segment_file.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/utf8.h"
#include "data/line_reader.h"

namespace tfm::metrics {
namespace {

// The column-th (1-based) tab-separated field of `line`, or nullopt when it has fewer fields.
std::optional<std::string_view> field(std::string_view line, int column) {
  for (int c = 1; c < column; ++c) {
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return std::nullopt;
    line.remove_prefix(tab + 1);
  }
  return line.substr(0, line.find('\t'));
}

}  // namespace

std::vector<std::string> read_segments(const std::string& path, int column) {
  if (column < 0)
    fail("{}: column {} is not valid (columns count from 1; 0 reads whole lines)", path, column);
  data::LineReader reader(path);
  std::vector<std::string> segments;
  for (std::string line; reader.next(line);) {
    if (std::optional<size_t> bad = find_invalid_utf8(line))
      fail("{}:{}: invalid UTF-8 at byte offset {}", path, reader.line_number(), *bad);
    if (column == 0) {
      segments.push_back(std::move(line));
      continue;
    }
    std::optional<std::string_view> value = field(line, column);
    if (!value)
      fail("{}:{}: no column {} (the line has {} tab-separated fields)", path, reader.line_number(), column,
           std::count(line.begin(), line.end(), '\t') + 1);
    segments.emplace_back(*value);
  }
  return segments;
}

}  // namespace tfm::metrics
