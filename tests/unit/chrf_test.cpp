// chrF against sacreBLEU 2.x's default CHRF(): the scores sacreBLEU printed for the shipped translations,
// and small cases worked out by hand from metrics/chrf.py (effective-order averaging of precision and
// recall, then F-beta with beta = 2).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "metrics/chrf.h"
#include "metrics/segment_file.h"
#include "test_support.h"

namespace tfm::metrics {
namespace {

std::string chrf(const std::string& hyp, std::vector<std::string> refs) {
  std::vector<std::vector<std::string>> streams;
  for (std::string& r : refs) streams.push_back({std::move(r)});
  return corpus_chrf({hyp}, streams).format();
}

TEST(Chrf, IdenticalIsHundred) { EXPECT_EQ(chrf("the cat sat", {"the cat sat"}), "chrF2 = 100.00"); }

TEST(Chrf, WhitespaceIsIgnored) {
  EXPECT_EQ(chrf("a b", {"ab"}), "chrF2 = 100.00");
  EXPECT_EQ(chrf("a\u00a0b\t c", {"abc"}), "chrF2 = 100.00");
}

TEST(Chrf, AveragesOnlyOrdersPresentOnBothSides) {
  // "ab" vs "abc": unigrams 2/2 precision, 2/3 recall; bigrams 1/1, 1/2; the hypothesis has no trigram,
  // so orders 3-6 drop out. P = 1, R = 7/12, F2 = 5PR / (4P + R) = 0.6364.
  EXPECT_EQ(chrf("ab", {"abc"}), "chrF2 = 63.64");
}

TEST(Chrf, CountsCodePointsNotBytes) {
  // "nu" vs "ñu": unigrams 1/2 both ways, bigrams 0/1: P = R = 0.25, F2 = 0.25.
  EXPECT_EQ(chrf("nu", {"ñu"}), "chrF2 = 25.00");
  EXPECT_EQ(chrf("ñu", {"ñu"}), "chrF2 = 100.00");
}

TEST(Chrf, NoMatchOrEmptyHypothesisIsZero) {
  EXPECT_EQ(chrf("xyz", {"abc"}), "chrF2 = 0.00");
  EXPECT_EQ(chrf("", {"abc"}), "chrF2 = 0.00");
  EXPECT_EQ(chrf("", {""}), "chrF2 = 0.00");
}

TEST(Chrf, BestReferenceIsKept) {
  EXPECT_EQ(chrf("abc", {"xyz", "abc"}), "chrF2 = 100.00");
  EXPECT_EQ(chrf("ab", {"abc", "xyz"}), "chrF2 = 63.64");
}

TEST(Chrf, CorpusSumsStatisticsBeforeScoring) {
  // ("ab", "abc") + ("abc", "abc"): per order (hyp, ref, match) = (5, 6, 5), (3, 4, 3), (1, 2, 1).
  // P = 1, R = (5/6 + 3/4 + 1/2) / 3, F2 = 0.7396 (the mean of the two sentence scores would be 81.82).
  ChrfScore s = corpus_chrf({"ab", "abc"}, {{"abc", "abc"}});
  EXPECT_EQ(s.format(), "chrF2 = 73.96");
  EXPECT_EQ(s.stats.orders[0].hyp, 5);
  EXPECT_EQ(s.stats.orders[0].ref, 6);
  EXPECT_EQ(s.stats.orders[2].match, 1);
  EXPECT_EQ(s.stats.orders[3].ref, 0);
}

TEST(Chrf, HypothesisNgramsAreNotCountedWhereTheReferenceHasNone) {
  // The reference "ab" has no trigram, so the hypothesis' trigram is not counted (sacreBLEU's rule).
  ChrfScore s = corpus_chrf({"abc"}, {{"ab"}});
  EXPECT_EQ(s.stats.orders[2].hyp, 0);
  EXPECT_EQ(s.stats.orders[1].hyp, 2);
}

TEST(Chrf, BadInputIsAClearError) {
  EXPECT_EQ(test::error_of([] {
              corpus_chrf({"a"}, {{"a"}, {"a", "b"}});
            }),
            "reference 2 has 2 segments but there are 1 hypotheses");
  EXPECT_EQ(test::error_of([] { corpus_chrf({"a"}, {{"\xc3"}}); }),
            "reference 1 line 1: invalid UTF-8 at byte offset 0");
}

TEST(Chrf, MatchesSacreBleuOnShippedTranslations) {
  const std::string models = test::shared_dir() + "/models/mt-en-es";
  const nlohmann::json scores = nlohmann::json::parse(std::ifstream(models + "/scores.json"));
  const std::vector<std::string> refs = read_segments(test::shared_dir() + "/data/bible-en-es/test.tsv", 2);
  for (const auto& [system, expected] : scores.items()) {
    const ChrfScore s = corpus_chrf(read_segments(models + "/" + system + ".es"), {refs});
    EXPECT_EQ(s.format(), fmt::format("chrF2 = {:.2f}", expected["chrf"].get<double>())) << system;
  }
  EXPECT_EQ(corpus_chrf(read_segments(models + "/test.beam1.es"), {refs}).format(), "chrF2 = 50.42");
  EXPECT_EQ(corpus_chrf(read_segments(models + "/test.beam4.es"), {refs}).format(), "chrF2 = 51.99");
}

}  // namespace
}  // namespace tfm::metrics
