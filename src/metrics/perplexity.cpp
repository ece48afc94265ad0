#include "metrics/perplexity.h"

#include <cmath>

#include "core/error.h"

namespace tfm::metrics {

void PerplexityAccumulator::add(double nll_sum, int64_t count) {
  if (count < 0) fail("perplexity: negative token count {}", count);
  if (!std::isfinite(nll_sum)) fail("perplexity: non-finite NLL sum {} over {} tokens", nll_sum, count);
  total_nll += nll_sum;
  tokens += count;
}

double PerplexityAccumulator::mean_nll() const {
  if (tokens == 0) fail("perplexity: no tokens were scored");
  return total_nll / double(tokens);
}

double PerplexityAccumulator::perplexity() const { return std::exp(mean_nll()); }

}  // namespace tfm::metrics
