#include "tokenize/whitespace.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace tfm::tokenize {
namespace {

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> pieces;
  for (std::string_view piece : split_whitespace(text)) pieces.emplace_back(piece);
  return pieces;
}

using Pieces = std::vector<std::string>;

TEST(Whitespace, WordsAndPunctuation) {
  EXPECT_EQ(split("Hello, world!"), (Pieces{"Hello", ",", "world", "!"}));
  EXPECT_EQ(split("¿Qué pasó?"), (Pieces{"¿", "Qué", "pasó", "?"}));
  EXPECT_EQ(split("a_b c-d"), (Pieces{"a_b", "c", "-", "d"}));
  EXPECT_EQ(split("don't"), (Pieces{"don", "'", "t"}));
  EXPECT_EQ(split("“Yes,” he said..."), (Pieces{"“", "Yes", ",”", "he", "said", "..."}));
}

TEST(Whitespace, DigitsAndAccents) {
  EXPECT_EQ(split("In 1611, 40 men"), (Pieces{"In", "1611", ",", "40", "men"}));
  EXPECT_EQ(split("abc123def 3.14"), (Pieces{"abc123def", "3", ".", "14"}));
  EXPECT_EQ(split("niño café ÑANDÚ"), (Pieces{"niño", "café", "ÑANDÚ"}));
  // A combining accent (a mark) belongs to its word: "cafe" + U+0301.
  EXPECT_EQ(split("cafe\xCC\x81!"), (Pieces{"cafe\xCC\x81", "!"}));
  // Other scripts: Greek, Cyrillic, Devanagari (with its vowel signs, which are marks), Han.
  EXPECT_EQ(split("λόγος слово नमस्ते 中文。"), (Pieces{"λόγος", "слово", "नमस्ते", "中文", "。"}));
}

TEST(Whitespace, Emoji) {
  EXPECT_EQ(split("hi😀!"), (Pieces{"hi", "😀!"}));
  // U+2764 is a symbol; the variation selector U+FE0F after it is a mark, so a word character.
  EXPECT_EQ(split("I ❤\xEF\xB8\x8F you"), (Pieces{"I", "❤", "\xEF\xB8\x8F", "you"}));
}

TEST(Whitespace, WhiteSpaceOfAllKinds) {
  EXPECT_EQ(split(""), Pieces{});
  EXPECT_EQ(split(" \t\r\n "), Pieces{});
  // Tab, newline, no-break space U+00A0, ideographic space U+3000.
  EXPECT_EQ(split("a\tb\nc\xC2\xA0"
                  "d\xE3\x80\x80"
                  "e"),
            (Pieces{"a", "b", "c", "d", "e"}));
}

// Where Oniguruma's two notions of \w differ (see whitespace.h): Latin-1 numbers join words and
// punctuation runs alike; numbers above U+00FF that are not digits are punctuation; Alphabetic symbols
// (circled letters) are word characters.
TEST(Whitespace, OnigurumaWordClasses) {
  EXPECT_EQ(split("x² !² ½"), (Pieces{"x²", "!²", "½"}));
  EXPECT_EQ(split("x①y"), (Pieces{"x", "①", "y"}));
  EXPECT_EQ(split("Ⓐb"), (Pieces{"Ⓐb"}));
}

TEST(Whitespace, InvalidUtf8Throws) {
  EXPECT_THROW(split("ab\xFF"), Error);
  EXPECT_THROW(split("\xE2\x82"), Error);  // truncated sequence
}

}  // namespace
}  // namespace tfm::tokenize
