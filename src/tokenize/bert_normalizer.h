// Hugging Face tokenizers' BertNormalizer (normalizers/bert.rs), in its order:
//  1. clean_text: drop U+0000, U+FFFD and control characters; every whitespace character becomes ' '.
//  2. handle_chinese_chars: a space on each side of every CJK ideograph, so each becomes a word of its own.
//  3. strip_accents (default: the value of lowercase): NFD, then drop the nonspacing marks (Mn).
//  4. lowercase: each character on its own, as Rust's char::to_lowercase (no context: a final capital sigma
//     becomes σ, not ς; U+0130 İ becomes "i" + U+0307).
// The character classes are HF's (see bert_chars.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tfm::tokenize {

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: same as lowercase
  bool lowercase = true;

  bool operator==(const BertNormalizerOptions&) const = default;
};

// Throws tfm::Error naming the byte offset if `text` is not valid UTF-8.
std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options);

}  // namespace tfm::tokenize
