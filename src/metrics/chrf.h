// chrF exactly as sacreBLEU 2.x's default CHRF() computes it (metrics/chrf.py): character n-grams of
// order 1-6 over each segment with all whitespace removed, beta = 2, no word n-grams. Per segment, the
// reference with the best chrF is kept; the corpus score sums the [hypothesis, reference, matching]
// n-gram counts per order over all segments, averages precision and recall over the orders where both the
// hypothesis and the reference have n-grams (the default, eps_smoothing=False), and returns their F-beta.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tfm::metrics {

inline constexpr int kChrfCharOrder = 6;
inline constexpr int kChrfBeta = 2;

struct ChrfOrderStats {
  int64_t hyp = 0;    // hypothesis n-grams (0 when the reference has none of this order)
  int64_t ref = 0;    // reference n-grams
  int64_t match = 0;  // clipped matches
};

struct ChrfStats {
  std::array<ChrfOrderStats, kChrfCharOrder> orders{};
  ChrfStats& operator+=(const ChrfStats& other);
};

struct ChrfScore {
  double score = 0;  // 0-100
  ChrfStats stats;
  std::string format() const;  // sacreBLEU's line, e.g. "chrF2 = 50.42"
};

// Statistics of one hypothesis against its best reference. Segments must be valid UTF-8.
ChrfStats chrf_segment_stats(const std::string& hypothesis, const std::vector<std::string>& references);

ChrfScore chrf_from_stats(const ChrfStats& stats);

// sacreBLEU's corpus_chrf / CHRF().corpus_score; `references` as for corpus_bleu (one stream per
// reference set). Throws tfm::Error on mismatched lengths or invalid UTF-8.
ChrfScore corpus_chrf(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references);

}  // namespace tfm::metrics
