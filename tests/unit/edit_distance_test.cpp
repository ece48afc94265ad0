// Edit distance, WER, CER (torchmetrics' definitions) and perplexity on hand-computed examples and the
// examples in torchmetrics' documentation.
#include <gtest/gtest.h>

#include <cmath>

#include "metrics/edit_distance.h"
#include "metrics/perplexity.h"
#include "test_support.h"

namespace tfm::metrics {
namespace {

int64_t distance(std::string_view a, std::string_view b) {
  return edit_distance<char>(std::span(a.data(), a.size()), std::span(b.data(), b.size()));
}

TEST(EditDistance, HandComputed) {
  EXPECT_EQ(distance("kitten", "sitting"), 3);  // two substitutions, one insertion
  EXPECT_EQ(distance("sitting", "kitten"), 3);
  EXPECT_EQ(distance("", "abc"), 3);
  EXPECT_EQ(distance("abc", ""), 3);
  EXPECT_EQ(distance("", ""), 0);
  EXPECT_EQ(distance("flaw", "lawn"), 2);  // delete f, insert n
  EXPECT_EQ(distance("abcdef", "azced"), 3);
}

TEST(ErrorRate, TorchmetricsDocumentationExamples) {
  // torchmetrics' docstrings: char_error_rate = 0.3415, word_error_rate = 0.5 for these.
  const std::vector<std::string> preds = {"this is the prediction", "there is an other sample"};
  const std::vector<std::string> target = {"this is the reference", "there is another one"};
  ErrorCounts chars = char_errors(preds, target);
  EXPECT_EQ(chars.reference_length, 41);
  EXPECT_NEAR(chars.rate(), 0.3415, 5e-5);
  ErrorCounts words = word_errors(preds, target);
  EXPECT_EQ(words.errors, 4);
  EXPECT_EQ(words.reference_length, 8);
  EXPECT_DOUBLE_EQ(word_error_rate(preds, target), 0.5);
}

TEST(ErrorRate, CharactersAreCodePoints) {
  ErrorCounts c = char_errors({"añb"}, {"anb"});
  EXPECT_EQ(c.errors, 1);
  EXPECT_EQ(c.reference_length, 3);
  EXPECT_EQ(char_errors({"日本語"}, {"日本"}).errors, 1);
}

TEST(ErrorRate, WordsSplitOnPythonWhitespace) {
  ErrorCounts w = word_errors({"a\u00a0b  c"}, {"a b d"});
  EXPECT_EQ(w.errors, 1);
  EXPECT_EQ(w.reference_length, 3);
}

TEST(ErrorRate, CorpusRateIsSummedErrorsOverSummedLength) {
  // 1 error in 4 words, 2 in 2: 3/6, not the mean of 1/4 and 2/2.
  EXPECT_DOUBLE_EQ(word_error_rate({"a b c x", "y z"}, {"a b c d", "e f"}), 0.5);
}

TEST(ErrorRate, EmptyReferenceAsTorchmetrics) {
  // An empty reference adds its hypothesis length as errors and nothing to the length.
  EXPECT_DOUBLE_EQ(word_error_rate({"a b", "c"}, {"a b", ""}), 0.5);
  EXPECT_TRUE(std::isinf(word_error_rate({"a b"}, {""})));  // errors / 0
  EXPECT_TRUE(std::isnan(char_error_rate({""}, {""})));     // 0 / 0
}

TEST(ErrorRate, BadInputIsAClearError) {
  EXPECT_EQ(test::error_of([] {
              char_errors({"a", "b"}, {"a"});
            }),
            "reference 1 has 1 segments but there are 2 hypotheses");
  EXPECT_EQ(test::error_of([] { word_errors({"a"}, {"b\xe2\x82"}); }),
            "reference 1 line 1: invalid UTF-8 at byte offset 1");
}

TEST(Perplexity, ExpOfMeanNll) {
  PerplexityAccumulator p;
  p.add(std::log(4.0), 1);   // a token with probability 1/4
  p.add(std::log(16.0), 1);  // and one with 1/16: mean NLL log(8)
  EXPECT_EQ(p.tokens, 2);
  EXPECT_NEAR(p.perplexity(), 8.0, 1e-12);
  EXPECT_EQ(test::error_of([] { PerplexityAccumulator().perplexity(); }),
            "perplexity: no tokens were scored");
  EXPECT_EQ(test::error_of([&] { p.add(NAN, 3); }), "perplexity: non-finite NLL sum nan over 3 tokens");
}

}  // namespace
}  // namespace tfm::metrics
