// BLEU exactly as sacreBLEU 2.x computes it (metrics/bleu.py): 13a tokenization, n-grams of order 1-4
// clipped by the largest count in any one reference, the closest reference length (shorter wins a tie),
// 'exp' smoothing (mteval-v13a's: the k-th order without a match gets precision 1 / (2^k * total)), and
// the brevity penalty exp(1 - ref_len / hyp_len). Corpus BLEU sums the statistics over segments first.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tfm::metrics {

inline constexpr int kBleuMaxOrder = 4;

// Sufficient statistics of a segment or a corpus (they add up).
struct BleuStats {
  int64_t hyp_len = 0;
  int64_t ref_len = 0;
  std::array<int64_t, kBleuMaxOrder> matches{};  // clipped matching n-grams, per order
  std::array<int64_t, kBleuMaxOrder> totals{};   // hypothesis n-grams, per order

  BleuStats& operator+=(const BleuStats& other);
};

struct BleuScore {
  double score = 0;                                // 0-100
  std::array<double, kBleuMaxOrder> precisions{};  // 0-100, smoothed; 0 for orders after a missing one
  double bp = 1;
  double ratio = 0;  // hyp_len / ref_len, 0 when ref_len is 0
  BleuStats stats;

  // sacreBLEU's line, e.g.
  // "BLEU = 28.40 60.1/34.9/21.8/14.2 (BP = 1.000 ratio = 1.022 hyp_len = 16595 ref_len = 16244)".
  std::string format() const;
};

// Statistics of one hypothesis against its references (each a raw, untokenized segment).
BleuStats bleu_segment_stats(const std::string& hypothesis, const std::vector<std::string>& references);

// The score from summed statistics. effective_order: average the log precisions only over the orders the
// hypothesis has n-grams of (sacreBLEU's effective_order, the sentence-level default).
BleuScore bleu_from_stats(const BleuStats& stats, bool effective_order);

// sacreBLEU's corpus_bleu / BLEU().corpus_score: `references` holds one stream per reference set, each
// with one segment per hypothesis. Throws tfm::Error if a stream's length differs from the hypotheses' or
// a segment is not valid UTF-8 (naming the stream and line).
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references);

// sacreBLEU's sentence_bleu defaults: 'exp' smoothing with effective order.
BleuScore sentence_bleu(const std::string& hypothesis, const std::vector<std::string>& references);

}  // namespace tfm::metrics
