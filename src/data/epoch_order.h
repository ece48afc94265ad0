// What the batch iterators share: per-epoch random orders drawn from (seed, epoch) alone, the split of an
// epoch's batches between data-parallel ranks, and the resumable position.
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

// Throws tfm::Error unless 0 <= rank < world_size.
void check_rank(int64_t rank, int64_t world_size);

// Rank `rank`'s share of an epoch's batches: all[rank], all[rank + world_size], ... Every batch goes to
// exactly one rank; ranks get equally many, or the first ones one more.
template <typename T>
std::vector<T> shard(std::vector<T> all, int64_t rank, int64_t world_size) {
  if (world_size == 1) return all;
  std::vector<T> mine;
  for (size_t b = size_t(rank); b < all.size(); b += size_t(world_size)) mine.push_back(std::move(all[b]));
  return mine;
}

// `position`, with the end of an epoch read as the start of the next. Throws tfm::Error naming `who` for a
// negative epoch or an index outside [0, batches_per_epoch].
BatchPosition normalized_position(BatchPosition position, int64_t batches_per_epoch, const char* who);

}  // namespace tfm::data
