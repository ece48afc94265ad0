// Attention position biases that are not rotary: T5's bucketed relative positions and BLOOM's ALiBi.
#pragma once

#include <cstdint>
#include <vector>

namespace tfm::kernels {

// T5's bucket of relative_position = key position - query position (HF modeling_t5.py
// T5Attention._relative_position_bucket). Bidirectional (encoder): half the buckets for keys after the
// query; unidirectional (decoder): keys after the query all fall in bucket 0. Within a half, distances
// below max_exact = buckets/2 have a bucket each; larger ones share log-spaced buckets up to max_distance:
//   max_exact + int(log(n / max_exact) / log(max_distance / max_exact) * (buckets - max_exact)), capped.
// The log term is evaluated in float32 like HF (its boundaries then fall where HF's do).
int64_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance);

// buckets[i * k_len + j] for query i at position i + query_offset and key j at position j.
void relative_position_buckets(int64_t q_len, int64_t k_len, int64_t query_offset, bool bidirectional,
                               int64_t num_buckets, int64_t max_distance, int64_t* buckets);

// bias[h, i, j] = table[buckets[i, j], h]; table [num_buckets, heads], bias [heads, q_len * k_len].
void relative_bias_forward(const float* table, int64_t heads, const int64_t* buckets, int64_t cells,
                           float* bias);
// dtable[buckets[c], h] += dbias[h, c].
void relative_bias_backward(const float* dbias, int64_t heads, const int64_t* buckets, int64_t cells,
                            float* dtable);

// ALiBi head slopes as BLOOM's build_alibi_tensor makes them (Press et al. 2021): for the largest power of
// two p <= heads, slope_h = 2^(-8 (h + 1) / p); the remaining heads take every other slope of the
// 2p-head sequence, 2^(-4 (2 j + 1) / p) for j = 0, 1, ...
std::vector<float> alibi_slopes(int64_t heads);

}  // namespace tfm::kernels
