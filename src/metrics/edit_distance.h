// Levenshtein distance and the error rates built on it, as torchmetrics defines them
// (functional/text/wer.py, cer.py, helper.py::_edit_distance): unit-cost insertions, deletions and
// substitutions; the corpus rate is the summed distance over the summed reference length.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tfm::metrics {

// Fewest insertions, deletions and substitutions turning `a` into `b`. O(|a| * |b|) time, one row of
// min(|a|, |b|) + 1 counters.
template <typename T>
int64_t edit_distance(std::span<const T> a, std::span<const T> b) {
  if (a.size() < b.size()) std::swap(a, b);  // the distance is symmetric; keep the row short
  std::vector<int64_t> row(b.size() + 1);    // row[j]: distance between a[0, i) and b[0, j)
  std::iota(row.begin(), row.end(), int64_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];  // distance between a[0, i-1) and b[0, j-1)
    row[0] = int64_t(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t above = row[j];
      row[j] = a[i - 1] == b[j - 1] ? diagonal : 1 + std::min({diagonal, above, row[j - 1]});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Summed edit distance and summed reference length; they add up over batches like torchmetrics' state.
struct ErrorCounts {
  int64_t errors = 0;
  int64_t reference_length = 0;
  ErrorCounts& operator+=(const ErrorCounts& other);
  // errors / reference_length. With an empty total reference this is what torchmetrics returns:
  // +inf when there are errors, NaN when there are none.
  double rate() const;
};

// Words are Python str.split() pieces (Unicode whitespace); characters are code points. Throws tfm::Error
// when the lists differ in length or a line is not valid UTF-8.
ErrorCounts word_errors(const std::vector<std::string>& hypotheses,
                        const std::vector<std::string>& references);
ErrorCounts char_errors(const std::vector<std::string>& hypotheses,
                        const std::vector<std::string>& references);

inline double word_error_rate(const std::vector<std::string>& hypotheses,
                              const std::vector<std::string>& references) {
  return word_errors(hypotheses, references).rate();
}
inline double char_error_rate(const std::vector<std::string>& hypotheses,
                              const std::vector<std::string>& references) {
  return char_errors(hypotheses, references).rate();
}

}  // namespace tfm::metrics
