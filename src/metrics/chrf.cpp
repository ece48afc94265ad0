#include "metrics/chrf.h"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/utf8.h"
#include "metrics/corpus_check.h"
#include "metrics/text.h"

namespace tfm::metrics {
namespace {

using CharNgramCounts = std::array<std::unordered_map<std::u32string_view, int64_t>, kChrfCharOrder>;

// The segment's code points without whitespace (sacreBLEU: ''.join(line.split())).
std::u32string without_whitespace(const std::string& segment) {
  std::u32string chars = decode_utf8(segment);
  std::erase_if(chars, is_whitespace);
  return chars;
}

// Counts per order; the keys view `chars`, which must outlive them.
CharNgramCounts count_char_ngrams(const std::u32string& chars) {
  CharNgramCounts counts;
  const std::u32string_view view(chars);
  for (size_t n = 1; n <= kChrfCharOrder; ++n)
    for (size_t i = 0; i + n <= view.size(); ++i) ++counts[n - 1][view.substr(i, n)];
  return counts;
}

ChrfStats match_stats(const CharNgramCounts& hyp, const CharNgramCounts& ref) {
  ChrfStats s;
  for (int n = 0; n < kChrfCharOrder; ++n) {
    ChrfOrderStats& o = s.orders[n];
    int64_t hyp_count = 0;
    for (const auto& [g, c] : hyp[n]) {
      hyp_count += c;
      if (auto it = ref[n].find(g); it != ref[n].end()) o.match += std::min(c, it->second);
    }
    for (const auto& [g, c] : ref[n]) o.ref += c;
    o.hyp = ref[n].empty() ? 0 : hyp_count;  // sacreBLEU does not count hypothesis n-grams then
  }
  return s;
}

}  // namespace

ChrfStats& ChrfStats::operator+=(const ChrfStats& other) {
  for (int n = 0; n < kChrfCharOrder; ++n) {
    orders[n].hyp += other.orders[n].hyp;
    orders[n].ref += other.orders[n].ref;
    orders[n].match += other.orders[n].match;
  }
  return *this;
}

ChrfStats chrf_segment_stats(const std::string& hypothesis, const std::vector<std::string>& references) {
  if (references.empty()) fail("chrF needs at least one reference per segment");
  const std::u32string hyp_chars = without_whitespace(hypothesis);
  const CharNgramCounts hyp = count_char_ngrams(hyp_chars);
  ChrfStats best;
  double best_score = -1;
  for (const std::string& r : references) {
    const std::u32string ref_chars = without_whitespace(r);
    const ChrfStats s = match_stats(hyp, count_char_ngrams(ref_chars));
    const double score = chrf_from_stats(s).score;
    if (score > best_score) {  // the first reference wins a tie
      best_score = score;
      best = s;
    }
  }
  return best;
}

ChrfScore chrf_from_stats(const ChrfStats& stats) {
  ChrfScore out;
  out.stats = stats;
  double avg_precision = 0, avg_recall = 0;
  int effective_order = 0;
  for (const ChrfOrderStats& o : stats.orders) {
    if (o.hyp == 0 || o.ref == 0) continue;
    avg_precision += double(o.match) / double(o.hyp);
    avg_recall += double(o.match) / double(o.ref);
    ++effective_order;
  }
  if (effective_order == 0) return out;
  avg_precision /= effective_order;
  avg_recall /= effective_order;
  if (avg_precision + avg_recall == 0) return out;
  const int factor = kChrfBeta * kChrfBeta;
  // Same operation order as sacreBLEU, so the double result is bit-identical.
  double f = (1 + factor) * avg_precision * avg_recall;
  f /= factor * avg_precision + avg_recall;
  out.score = 100 * f;
  return out;
}

std::string ChrfScore::format() const { return fmt::format("chrF{} = {:.2f}", kChrfBeta, score); }

ChrfScore corpus_chrf(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references) {
  check_corpus_shape(hypotheses, references);
  ChrfStats total;
  std::vector<std::string> segment_refs(references.size());
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    for (size_t r = 0; r < references.size(); ++r) segment_refs[r] = references[r][i];
    total += chrf_segment_stats(hypotheses[i], segment_refs);
  }
  return chrf_from_stats(total);
}

}  // namespace tfm::metrics
