// Input checks shared by the corpus metrics.
#pragma once

#include <string>
#include <vector>

namespace tfm::metrics {

// Throws tfm::Error unless there is at least one reference stream, every stream has one segment per
// hypothesis, and every segment is valid UTF-8 (naming "hypothesis line N" or "reference R line N").
void check_corpus_shape(const std::vector<std::string>& hypotheses,
                        const std::vector<std::vector<std::string>>& references);

// The same for a single reference stream.
void check_corpus_shape(const std::vector<std::string>& hypotheses,
                        const std::vector<std::string>& references);

}  // namespace tfm::metrics
