#include "metrics/edit_distance.h"

#include <limits>

#include "core/utf8.h"
#include "metrics/corpus_check.h"
#include "metrics/text.h"

namespace tfm::metrics {

ErrorCounts& ErrorCounts::operator+=(const ErrorCounts& other) {
  errors += other.errors;
  reference_length += other.reference_length;
  return *this;
}

double ErrorCounts::rate() const {
  if (reference_length == 0)
    return errors > 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  return double(errors) / double(reference_length);
}

ErrorCounts word_errors(const std::vector<std::string>& hypotheses,
                        const std::vector<std::string>& references) {
  check_corpus_shape(hypotheses, references);
  ErrorCounts total;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const std::vector<std::string_view> hyp = split_whitespace(hypotheses[i]),
                                        ref = split_whitespace(references[i]);
    total += {edit_distance<std::string_view>(hyp, ref), int64_t(ref.size())};
  }
  return total;
}

ErrorCounts char_errors(const std::vector<std::string>& hypotheses,
                        const std::vector<std::string>& references) {
  check_corpus_shape(hypotheses, references);
  ErrorCounts total;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const std::u32string hyp = decode_utf8(hypotheses[i]), ref = decode_utf8(references[i]);
    total += {edit_distance<char32_t>(hyp, ref), int64_t(ref.size())};
  }
  return total;
}

}  // namespace tfm::metrics
