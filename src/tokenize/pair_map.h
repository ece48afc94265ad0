// A hash map keyed by a pair of token ids, for BPE's merge table and its trainer's pair counts: open
// addressing with linear probing in one flat array, the pair packed into 64 bits. Ids are >= 0, so the
// all-ones key never occurs and marks an empty slot.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace tfm::tokenize {

inline uint64_t pack_pair(int32_t first, int32_t second) {
  return uint64_t(uint32_t(first)) << 32 | uint32_t(second);
}
inline int32_t pair_first(uint64_t pair) { return int32_t(pair >> 32); }
inline int32_t pair_second(uint64_t pair) { return int32_t(uint32_t(pair)); }

template <typename Value>
class PairMap {
 public:
  PairMap() { rehash(16); }

  const Value* find(int32_t first, int32_t second) const { return find(pack_pair(first, second)); }
  const Value* find(uint64_t key) const {
    for (size_t slot = home(key);; slot = (slot + 1) & mask_) {
      if (slots_[slot].first == key) return &slots_[slot].second;
      if (slots_[slot].first == kEmpty) return nullptr;
    }
  }
  Value* find(uint64_t key) { return const_cast<Value*>(std::as_const(*this).find(key)); }

  // The value at `key`, inserted as Value{} when absent.
  Value& operator[](uint64_t key) {
    if (2 * (size_ + 1) > slots_.size()) rehash(2 * slots_.size());
    size_t slot = home(key);
    while (slots_[slot].first != key && slots_[slot].first != kEmpty) slot = (slot + 1) & mask_;
    if (slots_[slot].first == kEmpty) {
      slots_[slot].first = key;
      ++size_;
    }
    return slots_[slot].second;
  }

  size_t size() const { return size_; }

  // Calls fn(key, value) for every entry, in no particular order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const auto& [key, value] : slots_)
      if (key != kEmpty) fn(key, value);
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);

  size_t home(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_); }

  void rehash(size_t capacity) {
    std::vector<std::pair<uint64_t, Value>> old(capacity, {kEmpty, Value{}});
    old.swap(slots_);
    mask_ = capacity - 1;
    shift_ = 64 - __builtin_ctzll(capacity);
    size_ = 0;
    for (auto& [key, value] : old)
      if (key != kEmpty) (*this)[key] = std::move(value);
  }

  std::vector<std::pair<uint64_t, Value>> slots_;
  size_t mask_ = 0;
  int shift_ = 0;
  size_t size_ = 0;
};

}  // namespace tfm::tokenize
