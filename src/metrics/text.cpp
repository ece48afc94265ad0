#include "metrics/text.h"

#include <unicode/utf8.h>

#include <cstdint>

namespace tfm::metrics {

bool is_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

size_t whitespace_length_at(std::string_view text, size_t i) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  int64_t next = int64_t(i);
  UChar32 c;
  U8_NEXT(bytes, next, int64_t(text.size()), c);  // c < 0 for an ill-formed sequence: not whitespace
  return c >= 0 && is_whitespace(char32_t(c)) ? size_t(next) - i : 0;
}

std::vector<std::string_view> split_whitespace(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0, word_begin = std::string_view::npos;
  while (i < text.size()) {
    const size_t space = whitespace_length_at(text, i);
    if (space == 0) {
      if (word_begin == std::string_view::npos) word_begin = i;
      ++i;
      continue;
    }
    if (word_begin != std::string_view::npos) words.push_back(text.substr(word_begin, i - word_begin));
    word_begin = std::string_view::npos;
    i += space;
  }
  if (word_begin != std::string_view::npos) words.push_back(text.substr(word_begin));
  return words;
}

std::string_view rstrip_whitespace(std::string_view text) {
  size_t end = 0, i = 0;  // end: one past the last non-whitespace byte seen
  while (i < text.size()) {
    const size_t space = whitespace_length_at(text, i);
    if (space == 0) end = ++i;
    i += space;
  }
  return text.substr(0, end);
}

}  // namespace tfm::metrics
