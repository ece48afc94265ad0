// Base64 with the standard alphabet and "=" padding (RFC 4648, section 4).
#pragma once

#include <string>
#include <string_view>

namespace tfm {

std::string base64_encode(std::string_view bytes);
// Throws tfm::Error naming the offset of the first character that is not base64 (or a bad length/padding).
std::string base64_decode(std::string_view text);

}  // namespace tfm
