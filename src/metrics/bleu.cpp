#include "metrics/bleu.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "metrics/corpus_check.h"
#include "metrics/tokenizer_13a.h"

namespace tfm::metrics {
namespace {

// n-gram counts of a tokenized segment, orders 1-4 together. Tokens hold no spaces and are joined by
// single spaces, so the substring from an n-gram's first token to its last identifies it uniquely.
using NgramCounts = std::unordered_map<std::string_view, int64_t>;

// The tokens of a 13a-tokenized segment (views into it: the string must stay where it is).
std::vector<std::string_view> split_tokens(std::string_view text) {
  std::vector<std::string_view> tokens;
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = std::min(text.find(' ', begin), text.size());
    tokens.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return tokens;
}

NgramCounts count_ngrams(const std::vector<std::string_view>& tokens) {
  NgramCounts counts;
  for (size_t n = 1; n <= kBleuMaxOrder; ++n)
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      const char* first = tokens[i].data();
      const char* last_end = tokens[i + n - 1].data() + tokens[i + n - 1].size();
      ++counts[std::string_view(first, size_t(last_end - first))];
    }
  return counts;
}

// The order of an n-gram key: its tokens are separated by single spaces.
int order_of(std::string_view ngram) { return 1 + int(std::count(ngram.begin(), ngram.end(), ' ')); }

// sacreBLEU's _get_closest_ref_len: the reference length closest to hyp_len, the shorter one on a tie.
int64_t closest_ref_len(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t best = -1, best_diff = -1;
  for (int64_t len : ref_lens) {
    const int64_t diff = std::abs(hyp_len - len);
    if (best_diff == -1 || diff < best_diff || (diff == best_diff && len < best)) {
      best_diff = diff;
      best = len;
    }
  }
  return best;
}

// sacreBLEU's my_log: log, with log(0) floored to -9999999999.
double floored_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

BleuStats& BleuStats::operator+=(const BleuStats& other) {
  hyp_len += other.hyp_len;
  ref_len += other.ref_len;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    matches[n] += other.matches[n];
    totals[n] += other.totals[n];
  }
  return *this;
}

BleuStats bleu_segment_stats(const std::string& hypothesis, const std::vector<std::string>& references) {
  if (references.empty()) fail("BLEU needs at least one reference per segment");
  // Every tokenized reference is stored before any view into it is taken, so no view dangles.
  std::vector<std::string> ref_texts;
  ref_texts.reserve(references.size());
  for (const std::string& r : references) ref_texts.push_back(tokenize_13a(r));
  std::vector<int64_t> ref_lens;
  NgramCounts max_ref_counts;  // per n-gram, its largest count in any one reference
  for (const std::string& text : ref_texts) {
    const std::vector<std::string_view> tokens = split_tokens(text);
    ref_lens.push_back(int64_t(tokens.size()));
    for (const auto& [g, c] : count_ngrams(tokens)) max_ref_counts[g] = std::max(max_ref_counts[g], c);
  }

  const std::string hyp_text = tokenize_13a(hypothesis);
  const std::vector<std::string_view> hyp = split_tokens(hyp_text);
  BleuStats s;
  s.hyp_len = int64_t(hyp.size());
  s.ref_len = closest_ref_len(s.hyp_len, ref_lens);
  for (const auto& [g, count] : count_ngrams(hyp)) {
    const int n = order_of(g) - 1;
    s.totals[n] += count;
    if (auto it = max_ref_counts.find(g); it != max_ref_counts.end())
      s.matches[n] += std::min(count, it->second);
  }
  return s;
}

BleuScore bleu_from_stats(const BleuStats& stats, bool effective_order) {
  BleuScore out;
  out.stats = stats;
  out.ratio = stats.ref_len ? double(stats.hyp_len) / double(stats.ref_len) : 0.0;
  if (stats.hyp_len < stats.ref_len)
    out.bp = stats.hyp_len > 0 ? std::exp(1.0 - double(stats.ref_len) / double(stats.hyp_len)) : 0.0;
  // sacreBLEU returns 0 with all precisions 0 when nothing matches at any order.
  if (std::all_of(stats.matches.begin(), stats.matches.end(), [](int64_t m) { return m == 0; })) return out;

  double smoothing = 1.0;  // 2^k after the k-th order without a match
  int orders_used = kBleuMaxOrder;
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    if (stats.totals[n] == 0) break;  // no longer n-grams: this and higher precisions stay 0
    if (effective_order) orders_used = n + 1;
    if (stats.matches[n] == 0) {
      smoothing *= 2;
      out.precisions[n] = 100.0 / (smoothing * double(stats.totals[n]));
    } else {
      out.precisions[n] = 100.0 * double(stats.matches[n]) / double(stats.totals[n]);
    }
  }
  double log_sum = 0;
  for (int n = 0; n < orders_used; ++n) log_sum += floored_log(out.precisions[n]);
  out.score = out.bp * std::exp(log_sum / orders_used);
  return out;
}

std::string BleuScore::format() const {
  return fmt::format(
      "BLEU = {:.2f} {:.1f}/{:.1f}/{:.1f}/{:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len = {})",
      score, precisions[0], precisions[1], precisions[2], precisions[3], bp, ratio, stats.hyp_len,
      stats.ref_len);
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references) {
  check_corpus_shape(hypotheses, references);
  BleuStats total;
  std::vector<std::string> segment_refs(references.size());
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    for (size_t r = 0; r < references.size(); ++r) segment_refs[r] = references[r][i];
    total += bleu_segment_stats(hypotheses[i], segment_refs);
  }
  return bleu_from_stats(total, /*effective_order=*/false);
}

BleuScore sentence_bleu(const std::string& hypothesis, const std::vector<std::string>& references) {
  std::vector<std::vector<std::string>> streams;
  for (const std::string& r : references) streams.push_back({r});
  check_corpus_shape({hypothesis}, streams);
  return bleu_from_stats(bleu_segment_stats(hypothesis, references), /*effective_order=*/true);
}

}  // namespace tfm::metrics
