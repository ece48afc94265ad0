#include "core/utf8.h"

#include <unicode/utf8.h>

#include <cstdint>

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

}  // namespace tfm
