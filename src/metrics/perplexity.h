// Perplexity from summed negative log-likelihoods, as torchmetrics' Perplexity computes it:
// exp(total_nll / token_count), with the sums accumulated across batches.
#pragma once

#include <cstdint>

namespace tfm::metrics {

struct PerplexityAccumulator {
  double total_nll = 0;  // sum of -log p(token), natural log
  int64_t tokens = 0;

  // Adds a batch: the summed NLL of its `count` tokens.
  void add(double nll_sum, int64_t count);
  double mean_nll() const;    // total_nll / tokens; throws tfm::Error when no token was added
  double perplexity() const;  // exp(mean_nll())
};

}  // namespace tfm::metrics
