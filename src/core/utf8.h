// UTF-8 validation (well-formed as Unicode defines it: no overlong forms, surrogates or code points past
// U+10FFFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tfm {

// Byte offset of the first ill-formed sequence in `text`, or nullopt when all of it is valid UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// The code points of `text`. Throws tfm::Error "invalid UTF-8 at byte offset N" at the first ill-formed
// sequence.
std::u32string decode_utf8(std::string_view text);

// `text` with each ill-formed sequence replaced by U+FFFD, one per maximal subpart ("U+FFFD Substitution of
// Maximal Subparts", Unicode Standard chapter 3; what WHATWG's decoder and Python's errors="replace" do):
// "a\xE2\x82z" becomes "a\uFFFDz", "\xC0\xAF" becomes two U+FFFD. Adds the replacements to *replaced
// unless it is null.
std::string replace_invalid_utf8(std::string_view text, int64_t* replaced = nullptr);

}  // namespace tfm
