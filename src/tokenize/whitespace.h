// The "Whitespace" pre-tokenizer of Hugging Face tokenizers: the matches of the regex \w+|[^\w\s]+,
// i.e. runs of word characters and runs of other non-space characters; white space separates them and
// is dropped. "¿Qué pasó?" -> "¿" "Qué" "pasó" "?"; "a_b c-d" -> "a_b" "c" "-" "d".
//
// Hugging Face runs that regex with Oniguruma, whose \w is not one set of characters:
//  - \w, as a token of its own, is letters, marks, numbers and connector punctuation (general categories
//    L, M, N, Pc) for U+0000..U+00FF, and Alphabetic, marks, decimal digits and Pc above;
//  - \w inside [^\w\s] is always Alphabetic | M | Nd | Pc, and \s is the White_Space property.
// So the few Latin-1 numbers that are not decimal digits ("²", "½") both join a word run and continue a
// run of punctuation ("x²" and "!²" are one piece each). This follows the engine exactly.
#pragma once

#include <string_view>
#include <vector>

namespace tfm::tokenize {

// The pieces of `text`, in order, as views into it. Throws tfm::Error if `text` is not valid UTF-8.
std::vector<std::string_view> split_whitespace(std::string_view text);

}  // namespace tfm::tokenize
