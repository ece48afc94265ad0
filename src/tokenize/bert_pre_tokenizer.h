// Hugging Face tokenizers' BertPreTokenizer (pre_tokenizers/bert.rs): split on whitespace (dropped), then
// every punctuation character (bert_chars.h: ASCII punctuation and symbols, Unicode P*) is a word of its
// own. "Hey friend!  How are you?!?" -> Hey friend ! How are you ? ! ?
#pragma once

#include <string_view>
#include <vector>

namespace tfm::tokenize {

// The words of `text`, in order, as views into it. Throws tfm::Error if `text` is not valid UTF-8.
std::vector<std::string_view> bert_pre_tokenize(std::string_view text);

}  // namespace tfm::tokenize
