#include "tokenize/bert_pre_tokenizer.h"

#include <unicode/utf8.h>

#include <cstdint>

#include "core/error.h"
#include "tokenize/bert_chars.h"

namespace tfm::tokenize {

std::vector<std::string_view> bert_pre_tokenize(std::string_view text) {
  std::vector<std::string_view> words;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int64_t size = int64_t(text.size());
  int64_t word_start = -1;  // start of the word being read, -1 between words
  const auto end_word = [&](int64_t end) {
    if (word_start >= 0) words.push_back(text.substr(size_t(word_start), size_t(end - word_start)));
    word_start = -1;
  };
  for (int64_t i = 0; i < size;) {
    const int64_t start = i;
    UChar32 c;
    U8_NEXT(bytes, i, size, c);
    if (c < 0) fail("invalid UTF-8 at byte offset {}", start);
    if (is_rust_whitespace(c)) {
      end_word(start);
    } else if (is_bert_punctuation(c)) {
      end_word(start);
      words.push_back(text.substr(size_t(start), size_t(i - start)));
    } else if (word_start < 0) {
      word_start = start;
    }
  }
  end_word(size);
  return words;
}

}  // namespace tfm::tokenize
