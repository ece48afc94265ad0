// The metrics' whitespace is Python's str.isspace() set, the one str.split() and str.rstrip() use.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "metrics/text.h"

namespace tfm::metrics {
namespace {

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  for (std::string_view word : split_whitespace(text)) words.emplace_back(word);
  return words;
}

// Every character for which Python 3's str.isspace() is true (unicodedata: bidirectional class WS, B or
// S, or category Zs).
const char* const kPythonSpaces[] = {
    "\t",     "\n",     "\v",     "\f",     "\r",     "\x1c",   "\x1d",   "\x1e",   "\x1f",   " ",
    "\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
    "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};

TEST(MetricsText, SplitsAtEveryPythonSpace) {
  for (const char* space : kPythonSpaces) {
    EXPECT_EQ(words_of(std::string("a") + space + "b"), (std::vector<std::string>{"a", "b"})) << space;
    const std::string trailing = std::string("a") + space + space;
    EXPECT_EQ(rstrip_whitespace(trailing), "a") << space;
  }
}

TEST(MetricsText, NeighboursOfTheSpacesAreNotSpaces) {
  // str.isspace() is False for each of these in Python 3 (U+180E since Unicode 6.3).
  for (const char* other : {"\x08", "\x0e", "\x1b", "!", "\u0084", "\u0086", "\u00a1", "\u180e", "\u1fff",
                            "\u200b", "\u2027", "\u202a", "\u205e", "\u2060", "\u3001", "\ufeff"}) {
    const std::string word = std::string("a") + other + "b";
    EXPECT_EQ(words_of(word), (std::vector<std::string>{word})) << other;
  }
}

}  // namespace
}  // namespace tfm::metrics
