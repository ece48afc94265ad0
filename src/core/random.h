// Counter-based random numbers: value i of a stream is a pure function of (seed, i), so results do
// not depend on thread count or call order inside a kernel, and the generator state is two integers
// (saved in checkpoints). The mixing function is SplitMix64's finaliser (Steele, Lea, Flood 2014).
#pragma once

#include <cmath>
#include <cstdint>

namespace tfm {

inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform float in [0, 1) from 24 random bits.
inline float uniform_at(uint64_t seed, uint64_t index) {
  return float(mix64(seed ^ mix64(index)) >> 40) * (1.0f / 16777216.0f);
}

// uniform_at(seed, index) >= p, decided on the integer: uniform_at is k / 2^24 for a 24-bit k, exactly, so
// the test is k >= ceil(p * 2^24). Same decisions, and the loop over i vectorises (no int-to-float step).
inline uint64_t keep_threshold(float p) { return uint64_t(std::ceil(double(p) * 16777216.0)); }
inline bool kept_at(uint64_t seed, uint64_t index, uint64_t threshold) {
  return (mix64(seed ^ mix64(index)) >> 40) >= threshold;
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  // Reserves `n` consecutive stream positions and returns the first.
  uint64_t take(uint64_t n) {
    uint64_t first = offset_;
    offset_ += n;
    return first;
  }
  float uniform() { return uniform_at(seed_, take(1)); }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }

 private:
  uint64_t seed_;
  uint64_t offset_;
};

}  // namespace tfm
