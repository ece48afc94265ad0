// What the batch iterators share: per-epoch random orders drawn from (seed, epoch) alone, the split of a
// batch's rows into data-parallel shards, and the resumable position.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace tfm::data {

// The next batch an iterator returns: batch `index` of epoch `epoch` (both from 0; index < the batches
// per epoch of this rank).
struct BatchPosition {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const BatchPosition&) const = default;
};

// The generator of one epoch's draws.
std::mt19937_64 epoch_rng(uint64_t seed, int64_t epoch);

// Uniform in [0, n), n > 0, from the raw 64-bit draws only (so it is the same with every standard
// library, unlike std::uniform_int_distribution).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

// Fisher-Yates.
template <typename T>
void shuffle(std::vector<T>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[uniform_below(rng, i)]);
}

// Shards first .. first + count - 1 of `of`, where shard k of a batch holds its rows k, k + of, k + 2 of, ...
// Data parallelism cuts every batch so (train/ decides which shards are whose); a rank reads only the rows
// of its own shards. A shard may be empty (a batch of fewer rows than shards).
struct RowShards {
  int64_t first = 0, count = 1, of = 1;
};

// Throws tfm::Error unless 1 <= count and 0 <= first and first + count <= of.
void check_shards(const RowShards& shards);

// Shard k of `of` of `rows`: rows[k], rows[k + of], ...
template <typename T>
std::vector<T> shard_rows(const std::vector<T>& rows, int64_t k, int64_t of) {
  std::vector<T> mine;
  for (size_t r = size_t(k); r < rows.size(); r += size_t(of)) mine.push_back(rows[r]);
  return mine;
}

// `position`, with the end of an epoch read as the start of the next. Throws tfm::Error naming `who` for a
// negative epoch or an index outside [0, batches_per_epoch].
BatchPosition normalized_position(BatchPosition position, int64_t batches_per_epoch, const char* who);

}  // namespace tfm::data
