#include "metrics/text.h"

#include <cstdint>

namespace tfm::metrics {

size_t whitespace_length_at(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return k < text.size() ? uint8_t(text[k]) : uint8_t(0); };
  const uint8_t b0 = byte(i);
  if ((b0 >= 0x09 && b0 <= 0x0D) || (b0 >= 0x1C && b0 <= 0x20)) return 1;
  if (b0 == 0xC2) return byte(i + 1) == 0x85 || byte(i + 1) == 0xA0 ? 2 : 0;  // U+0085, U+00A0
  const uint8_t b1 = byte(i + 1), b2 = byte(i + 2);
  if (b0 == 0xE1) return b1 == 0x9A && b2 == 0x80 ? 3 : 0;  // U+1680
  if (b0 == 0xE3) return b1 == 0x80 && b2 == 0x80 ? 3 : 0;  // U+3000
  if (b0 != 0xE2) return 0;
  if (b1 == 0x80)
    return b2 <= 0x8A || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF ? 3 : 0;  // U+2000-200A, 2028/9, 202F
  return b1 == 0x81 && b2 == 0x9F ? 3 : 0;                                // U+205F
}

bool is_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
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
