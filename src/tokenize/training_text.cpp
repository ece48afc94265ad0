#include "tokenize/training_text.h"

#include <fstream>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/utf8.h"

namespace tfm::tokenize {

namespace {

// The column-th tab-separated field of `line` (1-based), or nullopt when it has fewer fields.
std::optional<std::string_view> field(std::string_view line, int column) {
  for (int i = 1; i < column; ++i) {
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return std::nullopt;
    line.remove_prefix(tab + 1);
  }
  return line.substr(0, line.find('\t'));
}

}  // namespace

std::vector<std::string> read_training_text(std::span<const std::string> paths, int column) {
  if (column < 0) fail("column {} is not a column number (1 = the first; 0 = whole lines)", column);
  std::vector<std::string> texts;
  for (const std::string& path : paths) {
    std::ifstream file(path, std::ios::binary);
    if (!file) fail("{}: cannot open", path);
    int64_t number = 0;
    for (std::string line; std::getline(file, line);) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (auto bad = find_invalid_utf8(line))
        fail("{}:{}: invalid UTF-8 at byte offset {}", path, number, *bad);
      if (column == 0) {
        texts.push_back(std::move(line));
        continue;
      }
      auto text = field(line, column);
      if (!text) fail("{}:{}: no column {} (the line has fewer tab-separated fields)", path, number, column);
      texts.emplace_back(*text);
    }
    if (file.bad()) fail("{}: read error", path);
  }
  return texts;
}

}  // namespace tfm::tokenize
