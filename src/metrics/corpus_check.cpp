#include "metrics/corpus_check.h"

#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/utf8.h"

namespace tfm::metrics {
namespace {

void check_length(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                  size_t reference_number) {
  if (references.size() != hypotheses.size())
    fail("reference {} has {} segments but there are {} hypotheses", reference_number, references.size(),
         hypotheses.size());
}

// Throws tfm::Error "<what> line N: invalid UTF-8 at byte offset M" for the first ill-formed line.
void check_lines_utf8(const std::vector<std::string>& lines, std::string_view what) {
  for (size_t i = 0; i < lines.size(); ++i)
    if (std::optional<size_t> bad = find_invalid_utf8(lines[i]))
      fail("{} line {}: invalid UTF-8 at byte offset {}", what, i + 1, *bad);
}

}  // namespace

void check_corpus_shape(const std::vector<std::string>& hypotheses,
                        const std::vector<std::vector<std::string>>& references) {
  if (references.empty()) fail("no reference stream given");
  for (size_t r = 0; r < references.size(); ++r) check_length(hypotheses, references[r], r + 1);
  check_lines_utf8(hypotheses, "hypothesis");
  for (size_t r = 0; r < references.size(); ++r)
    check_lines_utf8(references[r], fmt::format("reference {}", r + 1));
}

void check_corpus_shape(const std::vector<std::string>& hypotheses,
                        const std::vector<std::string>& references) {
  check_length(hypotheses, references, 1);
  check_lines_utf8(hypotheses, "hypothesis");
  check_lines_utf8(references, "reference 1");
}

}  // namespace tfm::metrics
