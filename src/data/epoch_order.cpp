#include "data/epoch_order.h"

#include "core/error.h"
#include "core/random.h"

namespace tfm::data {

std::mt19937_64 epoch_rng(uint64_t seed, int64_t epoch) {
  return std::mt19937_64(mix64(seed ^ mix64(uint64_t(epoch))));
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  // Draws below 2^64 mod n are rejected, which leaves a multiple of n equally likely values.
  const uint64_t reject_below = (0 - n) % n;
  for (;;) {
    const uint64_t draw = rng();
    if (draw >= reject_below) return draw % n;
  }
}

void check_shards(const RowShards& s) {
  if (s.count < 1 || s.first < 0 || s.first + s.count > s.of)
    fail("data sharding: shards {} to {} are not among {}", s.first, s.first + s.count - 1, s.of);
}

BatchPosition normalized_position(BatchPosition position, int64_t batches_per_epoch, const char* who) {
  if (position.epoch < 0 || position.index < 0 || position.index > batches_per_epoch)
    fail("{}: position (epoch {}, batch {}) is outside epochs of {} batches", who, position.epoch,
         position.index, batches_per_epoch);
  if (position.index == batches_per_epoch) return {position.epoch + 1, 0};
  return position;
}

}  // namespace tfm::data
