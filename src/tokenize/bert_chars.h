// The character classes of Hugging Face tokenizers' BERT normalizer and pre-tokenizer (normalizers/bert.rs,
// pre_tokenizers/bert.rs), reproduced code point for code point.
//
// HF takes the general categories from the `unicode_categories` crate, version 0.1.1 (the last one
// published), whose tables list the code points of the Unicode 8.0 UnicodeData.txt one by one. Two
// consequences:
//  - characters assigned after Unicode 8.0 are in none of its categories;
//  - UnicodeData.txt gives large blocks as a First/Last pair, so of the private-use blocks only the six
//    endpoints (U+E000, U+F8FF, U+F0000, U+FFFFD, U+100000, U+10FFFD) are "private use" there.
// We ask ICU for the category, keep only characters assigned by Unicode 8.0, and patch the handful whose
// category changed since then. Whitespace and lowercasing come from Rust's std instead (current Unicode).
#pragma once

#include <unicode/umachine.h>

namespace tfm::tokenize {

// Rust's char::is_whitespace (the White_Space property).
bool is_rust_whitespace(UChar32 c);
// BERT's "control" characters, which clean_text drops: HF's is_other (Cc, Cf and the private-use endpoints
// above), except \t \n \r, which count as whitespace.
bool is_bert_control(UChar32 c);
// Nonspacing marks (Mn) as the crate sees them: what strip_accents drops after NFD.
bool is_bert_nonspacing_mark(UChar32 c);
// BERT punctuation: ASCII punctuation (Rust's is_ascii_punctuation, which includes symbols such as $ + < = >
// ^ ` | ~) or a Unicode punctuation category P* as the crate sees it.
bool is_bert_punctuation(UChar32 c);
// The CJK ideograph ranges of HF's is_chinese_char (note: its fifth range starts at U+2B920, where Google's
// original BERT code has U+2B820).
bool is_bert_chinese_char(UChar32 c);

}  // namespace tfm::tokenize
