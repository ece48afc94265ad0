// GPT-2's byte alphabet and pre-tokenizer. Expected pieces are worked out by hand from the pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ under Oniguruma's rules
// (first matching alternative, greedy runs) and the Unicode properties of each character.
#include "tokenize/byte_level.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "test_support.h"

namespace tfm::tokenize {
namespace {

using Pieces = std::vector<std::string_view>;

TEST(ByteLevel, AlphabetIsGpt2s) {
  EXPECT_EQ(byte_char('a'), "a");
  EXPECT_EQ(byte_char('!'), "!");
  EXPECT_EQ(byte_char(' '), "Ġ");   // U+0120: the 33rd byte without a printable form
  EXPECT_EQ(byte_char('\n'), "Ċ");  // U+010A
  EXPECT_EQ(byte_char(0x00), "Ā");  // U+0100
  EXPECT_EQ(byte_char(0x7F), "ġ");  // U+0121
  EXPECT_EQ(byte_char(0xAD), "Ń");  // U+0143, the last one
  EXPECT_EQ(byte_char(0xE9), "é");  // Latin-1 printable: itself
  std::set<std::string_view> distinct;
  std::string all_bytes;
  for (int byte = 0; byte < 256; ++byte) {
    distinct.insert(byte_char(uint8_t(byte)));
    all_bytes += char(byte);
  }
  EXPECT_EQ(distinct.size(), 256u);
  EXPECT_EQ(chars_to_bytes(bytes_to_chars(all_bytes)), all_bytes);
  EXPECT_EQ(byte_of_char(U'Ġ'), ' ');
  EXPECT_EQ(byte_of_char(U' '), -1);  // the space itself is spelled Ġ
  EXPECT_EQ(chars_to_bytes("a b"), std::nullopt);
  EXPECT_EQ(chars_to_bytes("ĠhelloĊ"), " hello\n");
}

TEST(ByteLevel, WordsNumbersAndPunctuation) {
  EXPECT_EQ(split_gpt2_pretokens("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split_gpt2_pretokens("abc123def 45"), (Pieces{"abc", "123", "def", " 45"}));
  EXPECT_EQ(split_gpt2_pretokens("Hi!!? (x)"), (Pieces{"Hi", "!!?", " (", "x", ")"}));
  EXPECT_EQ(split_gpt2_pretokens("¿Qué?"), (Pieces{"¿", "Qué", "?"}));
  // A combining mark (Mn) is not \p{L}: it ends the letter run.
  EXPECT_EQ(split_gpt2_pretokens("cafe\u0301s"), (Pieces{"cafe", "\u0301", "s"}));
  // "²" (No) and "Ⅻ" (Nl) are \p{N}.
  EXPECT_EQ(split_gpt2_pretokens("x² Ⅻ"), (Pieces{"x", "²", " Ⅻ"}));
  EXPECT_EQ(split_gpt2_pretokens("你好，世界"), (Pieces{"你好", "，", "世界"}));
}

TEST(ByteLevel, Contractions) {
  EXPECT_EQ(split_gpt2_pretokens("I'm don't we'll they've"),
            (Pieces{"I", "'m", " don", "'t", " we", "'ll", " they", "'ve"}));
  EXPECT_EQ(split_gpt2_pretokens("'sam"), (Pieces{"'s", "am"}));    // matched even inside a word
  EXPECT_EQ(split_gpt2_pretokens("I'M"), (Pieces{"I", "'", "M"}));  // lower case only
  EXPECT_EQ(split_gpt2_pretokens("''s 's"), (Pieces{"''", "s", " '", "s"}));
  EXPECT_EQ(split_gpt2_pretokens("it’s"), (Pieces{"it", "’", "s"}));  // only the ASCII apostrophe
}

TEST(ByteLevel, WhiteSpaceRuns) {
  // The last space of a run before a word starts the word.
  EXPECT_EQ(split_gpt2_pretokens("a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split_gpt2_pretokens("a \t b"), (Pieces{"a", " \t", " b"}));
  // A run that ends in a character other than ' ' still leaves it: "\s+" then takes it alone.
  EXPECT_EQ(split_gpt2_pretokens("a\r\nb"), (Pieces{"a", "\r", "\n", "b"}));
  EXPECT_EQ(split_gpt2_pretokens("a\nb"), (Pieces{"a", "\n", "b"}));
  // At the end of the text the run stays whole.
  EXPECT_EQ(split_gpt2_pretokens("a  \n "), (Pieces{"a", "  \n "}));
  EXPECT_EQ(split_gpt2_pretokens(" "), (Pieces{" "}));
  EXPECT_EQ(split_gpt2_pretokens(""), (Pieces{}));
  // White_Space beyond ASCII: NBSP, ideographic space, NEL; U+001F is a control, not a space.
  EXPECT_EQ(split_gpt2_pretokens("a\u00a0b"), (Pieces{"a", "\u00a0", "b"}));
  EXPECT_EQ(split_gpt2_pretokens("a\u3000\u3000b"), (Pieces{"a", "\u3000", "\u3000", "b"}));
  EXPECT_EQ(split_gpt2_pretokens("a\u0085"), (Pieces{"a", "\u0085"}));
  EXPECT_EQ(split_gpt2_pretokens("a\x1f b"), (Pieces{"a", "\x1f", " b"}));
}

TEST(ByteLevel, InvalidUtf8NamesTheOffset) {
  const std::string message = test::error_of([] { split_gpt2_pretokens("abc \xff"); });
  EXPECT_NE(message.find("byte offset 4"), std::string::npos) << message;
}

TEST(ByteLevel, LossyUtf8LikeRust) {
  // Each maximal ill-formed subsequence becomes one U+FFFD (String::from_utf8_lossy).
  EXPECT_EQ(utf8_lossy("a\xff"
                       "b"),
            "a\uFFFDb");
  EXPECT_EQ(utf8_lossy("\xe2\x82"), "\uFFFD");  // a truncated 3-byte sequence: one
  EXPECT_EQ(utf8_lossy("\xf0\x28"), "\uFFFD(");
  EXPECT_EQ(utf8_lossy("\xc0\xaf"), "\uFFFD\uFFFD");  // C0 never starts a valid sequence
  EXPECT_EQ(utf8_lossy("é😀"), "é😀");
}

}  // namespace
}  // namespace tfm::tokenize
