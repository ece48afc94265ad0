#include "kernels/cpu/position_bias.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace tfm::kernels {

int64_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0, n = relative_position;
  if (bidirectional) {
    num_buckets /= 2;
    if (n > 0) bucket += num_buckets;
    n = std::abs(n);
  } else {
    n = n < 0 ? -n : 0;
  }
  const int64_t max_exact = num_buckets / 2;
  if (n < max_exact) return bucket + n;
  float log_ratio = std::log(float(n) / float(max_exact));
  float span = float(std::log(double(max_distance) / double(max_exact)));
  int64_t large = max_exact + int64_t(log_ratio / span * float(num_buckets - max_exact));
  return bucket + std::min(large, num_buckets - 1);
}

void relative_position_buckets(int64_t q_len, int64_t k_len, int64_t query_offset, bool bidirectional,
                               int64_t num_buckets, int64_t max_distance, int64_t* buckets) {
  for (int64_t i = 0; i < q_len; ++i)
    for (int64_t j = 0; j < k_len; ++j)
      buckets[i * k_len + j] =
          relative_position_bucket(j - (i + query_offset), bidirectional, num_buckets, max_distance);
}

void relative_bias_forward(const float* table, int64_t heads, const int64_t* buckets, int64_t cells,
                           float* bias) {
#pragma omp parallel for schedule(static) if (heads * cells > (1 << 15))
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t c = 0; c < cells; ++c) bias[h * cells + c] = table[buckets[c] * heads + h];
}

void relative_bias_backward(const float* dbias, int64_t heads, const int64_t* buckets, int64_t cells,
                            float* dtable) {
  // Each thread owns one head's column of the table: race-free and deterministic.
#pragma omp parallel for schedule(static) if (heads * cells > (1 << 15))
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t c = 0; c < cells; ++c) dtable[buckets[c] * heads + h] += dbias[h * cells + c];
}

std::vector<float> alibi_slopes(int64_t heads) {
  int64_t p = 1;
  while (p * 2 <= heads) p *= 2;
  std::vector<float> slopes;
  for (int64_t h = 0; h < p; ++h) slopes.push_back(float(std::exp2(-8.0 * double(h + 1) / double(p))));
  for (int64_t j = 0; j < std::min(p, heads - p); ++j)
    slopes.push_back(float(std::exp2(-4.0 * double(2 * j + 1) / double(p))));
  return slopes;
}

}  // namespace tfm::kernels
