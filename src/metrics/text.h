// Text helpers that reproduce Python's str semantics on UTF-8, so the metrics match sacreBLEU and
// torchmetrics (both Python) exactly: str.split() / str.rstrip() whitespace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tfm::metrics {

// Byte length of the whitespace character starting at text[i], i < text.size() (0 when text[i] does not
// start one).
// Whitespace is Python's str.isspace() set: U+0009-000D, U+001C-001F, U+0020, U+0085, U+00A0, U+1680,
// U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000 (U+200B and U+FEFF are not whitespace).
size_t whitespace_length_at(std::string_view text, size_t i);

// The same set as code points.
bool is_whitespace(char32_t c);

// Python's str.split() with no argument: the runs of non-whitespace, in order (views into `text`).
std::vector<std::string_view> split_whitespace(std::string_view text);

// Python's str.rstrip() with no argument.
std::string_view rstrip_whitespace(std::string_view text);

}  // namespace tfm::metrics
