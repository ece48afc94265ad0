#include "core/utf8.h"

#include <unicode/utf8.h>

#include <cstdint>

#include "core/error.h"

namespace tfm {

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int64_t length = int64_t(text.size());
  int64_t i = 0;
  while (i < length) {
    if (bytes[i] < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    const int64_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c < 0) return size_t(start);
  }
  return std::nullopt;
}

std::u32string decode_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int64_t length = int64_t(text.size());
  std::u32string out;
  out.reserve(text.size());
  for (int64_t i = 0; i < length;) {
    const int64_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c < 0) fail("invalid UTF-8 at byte offset {}", start);
    out.push_back(char32_t(c));
  }
  return out;
}

std::string replace_invalid_utf8(std::string_view text, int64_t* replaced) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int64_t length = int64_t(text.size());
  std::string out;
  out.reserve(text.size() + 8);
  int64_t i = 0;
  while (i < length) {
    const int64_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);  // on an ill-formed sequence, i moves past its maximal subpart
    if (c < 0) {
      out += kReplacement;
      if (replaced) ++*replaced;
    } else {
      out.append(text.data() + start, size_t(i - start));
    }
  }
  return out;
}

}  // namespace tfm
