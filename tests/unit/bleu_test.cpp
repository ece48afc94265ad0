// BLEU and its 13a tokenizer against sacreBLEU 2.x: the scores sacreBLEU printed for the shipped
// translations (models/mt-en-es/scores.json), and small cases worked out by hand from the rules in
// sacreBLEU's tokenizer_13a.py / tokenizer_re.py and metrics/bleu.py.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "metrics/bleu.h"
#include "metrics/segment_file.h"
#include "metrics/tokenizer_13a.h"
#include "test_support.h"

namespace tfm::metrics {
namespace {

TEST(Tokenizer13a, SeparatesAsciiSymbolsButNotApostropheHyphenOrLetters) {
  EXPECT_EQ(tokenize_13a("Hello, (world)!"), "Hello , ( world ) !");
  EXPECT_EQ(tokenize_13a("x$y"), "x $ y");
  EXPECT_EQ(tokenize_13a("@home"), "@ home");
  EXPECT_EQ(tokenize_13a("a/b"), "a / b");
  EXPECT_EQ(tokenize_13a("a\"b#c%d*e+f;g=h\\i]j^k_l`m{n|o}p~q"),
            "a \" b # c % d * e + f ; g = h \\ i ] j ^ k _ l ` m { n | o } p ~ q");
  EXPECT_EQ(tokenize_13a("don't"), "don't");
  EXPECT_EQ(tokenize_13a("well-known"), "well-known");
  EXPECT_EQ(tokenize_13a("¿Qué?"), "¿Qué ?");  // only ASCII symbols are split off
}

TEST(Tokenizer13a, PeriodAndCommaAfterNonDigit) {
  EXPECT_EQ(tokenize_13a("end."), "end .");
  EXPECT_EQ(tokenize_13a("está."), "está .");  // a multi-byte character counts as a non-digit
  EXPECT_EQ(tokenize_13a("a.5"), "a . 5");
  EXPECT_EQ(tokenize_13a(".5"), ". 5");  // the space the line is padded with precedes the period
  EXPECT_EQ(tokenize_13a("años,5"), "años , 5");
}

TEST(Tokenizer13a, PeriodAndCommaBeforeNonDigit) {
  EXPECT_EQ(tokenize_13a("3.5"), "3.5");
  EXPECT_EQ(tokenize_13a("1,000"), "1,000");
  EXPECT_EQ(tokenize_13a("5."), "5 .");
  EXPECT_EQ(tokenize_13a("5.a"), "5 . a");
  EXPECT_EQ(tokenize_13a(",x"), ", x");
  EXPECT_EQ(tokenize_13a("3,5."), "3,5 .");
}

TEST(Tokenizer13a, MatchesDoNotOverlapAsInRegexSub) {
  // ([^0-9])([.,]) consumes the first '.', so the second is not split from the 5 by that rule, and
  // ([.,])([^0-9]) does not split ".5" either.
  EXPECT_EQ(tokenize_13a("..5"), ". .5");
  EXPECT_EQ(tokenize_13a("a.,b"), "a . , b");
}

TEST(Tokenizer13a, DashAfterDigit) {
  EXPECT_EQ(tokenize_13a("1990-91"), "1990 - 91");
  EXPECT_EQ(tokenize_13a("1-2-3"), "1 - 2 - 3");
  EXPECT_EQ(tokenize_13a("a-1"), "a-1");
  EXPECT_EQ(tokenize_13a("COVID-19"), "COVID-19");
}

TEST(Tokenizer13a, EntitiesAreUnescapedInOrderOnce) {
  EXPECT_EQ(tokenize_13a("AT&amp;T"), "AT & T");
  EXPECT_EQ(tokenize_13a("&amp;lt;"), "<");           // &lt; is replaced after &amp;
  EXPECT_EQ(tokenize_13a("&amp;quot;"), "& quot ;");  // &quot; is replaced before &amp;
  EXPECT_EQ(tokenize_13a("&lt;b&gt;"), "< b >");
}

TEST(Tokenizer13a, SkippedMarkersAndLineBreaks) {
  EXPECT_EQ(tokenize_13a("a <skipped> b"), "a b");
  EXPECT_EQ(tokenize_13a("line-\nbreak"), "linebreak");
  EXPECT_EQ(tokenize_13a("two\nlines"), "two lines");
}

TEST(Tokenizer13a, CollapsesPythonWhitespace) {
  EXPECT_EQ(tokenize_13a("  a\tb  c \r"), "a b c");
  EXPECT_EQ(tokenize_13a("a\u00a0b\u2009c\u3000"), "a b c");  // no-break, thin and ideographic spaces
  EXPECT_EQ(tokenize_13a("a\u200bb"), "a\u200bb");            // zero-width space is not whitespace
  EXPECT_EQ(tokenize_13a(""), "");
}

std::vector<std::vector<std::string>> one_ref(std::vector<std::string> refs) { return {std::move(refs)}; }

TEST(Bleu, PerfectMatch) {
  EXPECT_EQ(corpus_bleu({"the cat sat on the mat."}, one_ref({"the cat sat on the mat."})).format(),
            "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)");
}

TEST(Bleu, BrevityPenalty) {
  // Every n-gram matches; BP = exp(1 - 6/5).
  EXPECT_EQ(corpus_bleu({"the cat sat on the"}, one_ref({"the cat sat on the mat"})).format(),
            "BLEU = 81.87 100.0/100.0/100.0/100.0 (BP = 0.819 ratio = 0.833 hyp_len = 5 ref_len = 6)");
}

TEST(Bleu, ExpSmoothingOfAnOrderWithoutMatches) {
  // 5/6, 3/5, 1/4 and 0/3 matches: the 4-gram precision becomes 1 / (2 * 3).
  BleuScore s = corpus_bleu({"the cat ran on the mat"}, one_ref({"the cat sat on the mat"}));
  EXPECT_EQ(s.format(),
            "BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)");
  EXPECT_EQ(s.stats.matches, (std::array<int64_t, 4>{5, 3, 1, 0}));
  EXPECT_EQ(s.stats.totals, (std::array<int64_t, 4>{6, 5, 4, 3}));
}

TEST(Bleu, NoMatchesAtAllIsZero) {
  EXPECT_EQ(corpus_bleu({"a b c d"}, one_ref({"w x y z"})).format(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)");
}

TEST(Bleu, MissingHigherOrdersGiveZeroWithoutEffectiveOrder) {
  EXPECT_EQ(corpus_bleu({"the cat"}, one_ref({"the cat sat on the mat"})).format(),
            "BLEU = 0.00 100.0/100.0/0.0/0.0 (BP = 0.135 ratio = 0.333 hyp_len = 2 ref_len = 6)");
}

TEST(Bleu, EmptyHypothesis) {
  EXPECT_EQ(corpus_bleu({""}, one_ref({"a b"})).format(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 2)");
  EXPECT_EQ(corpus_bleu({""}, one_ref({""})).format(),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 0.000 hyp_len = 0 ref_len = 0)");
}

TEST(Bleu, MultipleReferencesClipByOneReferenceAndPickClosestShorterLength) {
  // "a" is clipped to 2 (its count in the second reference), not 3 (both together); the lengths 5 and 3
  // are equally close to 4 and the shorter wins. Precisions 3/4, 2/3, 1/(2*2), 1/(4*1).
  BleuScore s = corpus_bleu({"a a a b"}, {{"a b c d e"}, {"a a c"}});
  EXPECT_EQ(s.format(),
            "BLEU = 42.04 75.0/66.7/25.0/25.0 (BP = 1.000 ratio = 1.333 hyp_len = 4 ref_len = 3)");
}

TEST(Bleu, CorpusSumsStatisticsBeforeScoring) {
  BleuScore a = corpus_bleu({"the cat ran on the mat"}, one_ref({"the cat sat on the mat"}));
  BleuScore b = corpus_bleu({"the cat sat on the"}, one_ref({"the cat sat on the mat"}));
  BleuStats sum = a.stats;
  sum += b.stats;
  BleuScore both = corpus_bleu({"the cat ran on the mat", "the cat sat on the"},
                               one_ref({"the cat sat on the mat", "the cat sat on the mat"}));
  EXPECT_EQ(both.format(), bleu_from_stats(sum, false).format());
  EXPECT_EQ(both.stats.matches, (std::array<int64_t, 4>{10, 7, 4, 2}));
  EXPECT_EQ(both.stats.hyp_len, 11);
  EXPECT_EQ(both.stats.ref_len, 12);
}

TEST(Bleu, SentenceBleuUsesEffectiveOrder) {
  // Only 1- and 2-grams exist: the mean runs over those two orders, BP = exp(1 - 3/2).
  EXPECT_EQ(sentence_bleu("the cat", {"the cat sat"}).format(),
            "BLEU = 60.65 100.0/100.0/0.0/0.0 (BP = 0.607 ratio = 0.667 hyp_len = 2 ref_len = 3)");
  EXPECT_EQ(sentence_bleu("the cat ran on the mat", {"the cat sat on the mat"}).format(),
            "BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)");
}

TEST(Bleu, BadInputIsAClearError) {
  EXPECT_EQ(test::error_of([] {
              corpus_bleu({"a", "b"}, one_ref({"a"}));
            }),
            "reference 1 has 1 segments but there are 2 hypotheses");
  EXPECT_EQ(test::error_of([] {
              corpus_bleu({"ok", "bad \xff"}, one_ref({"ok", "ok"}));
            }),
            "hypothesis line 2: invalid UTF-8 at byte offset 4");
  EXPECT_EQ(test::error_of([] { corpus_bleu({"a"}, {}); }), "no reference stream given");
  EXPECT_EQ(test::error_of([] { sentence_bleu("a", {}); }), "no reference stream given");
}

// The sacreBLEU lines stored beside the shipped translations, for every system listed there.
TEST(Bleu, MatchesSacreBleuOnShippedTranslations) {
  const std::string models = test::shared_dir() + "/models/mt-en-es";
  const nlohmann::json scores = nlohmann::json::parse(std::ifstream(models + "/scores.json"));
  ASSERT_GE(scores.size(), 2u);
  const std::vector<std::string> refs = read_segments(test::shared_dir() + "/data/bible-en-es/test.tsv", 2);
  for (const auto& [system, expected] : scores.items()) {
    const BleuScore s = corpus_bleu(read_segments(models + "/" + system + ".es"), {refs});
    EXPECT_EQ(s.format(), expected["sacrebleu"].get<std::string>()) << system;
    EXPECT_EQ(fmt::format("{:.2f}", s.score), fmt::format("{:.2f}", expected["bleu"].get<double>()))
        << system;
  }
}

TEST(Bleu, ShippedTranslationScoresAreTheSpecifiedOnes) {
  const std::string models = test::shared_dir() + "/models/mt-en-es";
  const std::vector<std::string> refs = read_segments(test::shared_dir() + "/data/bible-en-es/test.tsv", 2);
  EXPECT_EQ(corpus_bleu(read_segments(models + "/test.beam1.es"), {refs}).format(),
            "BLEU = 28.40 60.1/34.9/21.8/14.2 (BP = 1.000 ratio = 1.022 hyp_len = 16595 ref_len = 16244)");
  EXPECT_EQ(corpus_bleu(read_segments(models + "/test.beam4.es"), {refs}).format(),
            "BLEU = 30.98 62.7/37.6/24.1/16.2 (BP = 1.000 ratio = 1.001 hyp_len = 16257 ref_len = 16244)");
}

}  // namespace
}  // namespace tfm::metrics
