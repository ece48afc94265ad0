// GPT-2's byte-level alphabet and pre-tokenizer, as Hugging Face tokenizers' ByteLevel pre-tokenizer and
// decoder implement them.
//
// The alphabet (GPT-2's bytes_to_unicode): every byte is spelled by one printable character, so that
// vocabularies and merges files are text. The bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
// the code points of the same value; the other 68 bytes (0x00..0x20, 0x7F..0xA0, 0xAD), in increasing
// order, stand for U+0100, U+0101, ... (so ' ' is 'Ġ' = U+0120 and '\n' is 'Ċ' = U+010A).
//
// The pre-tokenizer (ByteLevel with use_regex) splits text into the matches of GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// as Oniguruma runs it: at each position the first alternative that matches wins, and each match is as
// long as its alternative allows. \p{L} and \p{N} are the general categories L* and N*; \s is the
// Unicode White_Space property (Oniguruma's \s: U+0009..U+000D, U+0085 and the categories Zs, Zl, Zp,
// which is exactly White_Space). "\s+(?!\S)" takes a run of white space except its last character when
// a non-space follows, so that last character (if it is ' ') starts the next word: "a   b" -> "a" "  "
// " b". Every character matches some alternative, so the pieces cover the text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tfm::tokenize {

// The alphabet character that stands for `byte`, UTF-8 encoded.
std::string_view byte_char(uint8_t byte);
// The byte that code point `c` stands for, or -1 when `c` is not one of the 256 alphabet characters.
int byte_of_char(char32_t c);
// `bytes` spelled in the alphabet: how byte-level vocabularies write tokens ("a b" -> "aĠb").
std::string bytes_to_chars(std::string_view bytes);
// The bytes a token spelled in the alphabet stands for; nullopt when some character is not in it.
std::optional<std::string> chars_to_bytes(std::string_view token);
// `bytes` made valid UTF-8: each maximal ill-formed subsequence becomes U+FFFD, as Rust's
// String::from_utf8_lossy does (Hugging Face's ByteLevel decoder ends with it).
std::string utf8_lossy(std::string_view bytes);

// Appends to `pieces` the GPT-2 pre-tokens of `text` (views into it), in order.
// Throws tfm::Error naming the byte offset in `text` if it is not valid UTF-8.
void split_gpt2_pretokens(std::string_view text, std::vector<std::string_view>& pieces);
std::vector<std::string_view> split_gpt2_pretokens(std::string_view text);

}  // namespace tfm::tokenize
