// UTF-8 validation (well-formed as Unicode defines it: no overlong forms, surrogates or code points past
// U+10FFFF).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace tfm {

// Byte offset of the first ill-formed sequence in `text`, or nullopt when all of it is valid UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view text);

}  // namespace tfm
