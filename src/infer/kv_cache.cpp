#include "infer/kv_cache.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace tfm::infer {

KvCache::KvCache(int layers, int64_t width, int64_t max_positions, int64_t rows, int64_t capacity,
                 bool track_valid, const KvLayout& layout)
    : layers_(layers),
      width_(width),
      max_positions_(max_positions),
      ring_(layout.ring),
      sinks_(layout.sinks),
      stored_(layout.state_rows > 0 ? layout.state_rows
              : layout.ring > 0     ? layout.sinks + layout.ring
                                    : max_positions),
      state_(layout.state_rows > 0),
      track_valid_(track_valid) {
  const int64_t ring = layout.ring, state_rows = layout.state_rows;
  TFM_CHECK(layers > 0 && width > 0 && max_positions > 0 && rows >= 0, "KvCache({}, {}, {}, {})", layers,
            width, max_positions, rows);
  TFM_CHECK(ring >= 0 && layout.sinks >= 0 && ring + layout.sinks <= max_positions && state_rows >= 0 &&
                (ring > 0 || layout.sinks == 0) && !((ring > 0 || state_rows > 0) && track_valid) &&
                !(ring > 0 && state_rows > 0),
            "KvCache: a ring of {} positions after {} kept ones or a state of {} rows for rows of {} (valid "
            "flags: {})",
            ring, layout.sinks, state_rows, max_positions, track_valid);
  allocate(std::max(rows, capacity));
  slot_.resize(size_t(rows));
  std::iota(slot_.begin(), slot_.end(), int64_t(0));
  length_.assign(size_t(rows), 0);
}

void KvCache::allocate(int64_t capacity) {
  // Uninitialised: the pages of slots that are never used are never touched.
  std::vector<Tensor> keys, values;
  for (int l = 0; l < layers_; ++l) {
    keys.push_back(Tensor::empty_persistent({std::max<int64_t>(capacity, 1), stored_, width_}));
    values.push_back(Tensor::empty_persistent({std::max<int64_t>(capacity, 1), stored_, width_}));
  }
  Tensor valid;
  if (track_valid_) valid = Tensor::empty_persistent({std::max<int64_t>(capacity, 1), stored_}, DType::U8);
  // Slots keep their numbers in the larger buffers.
  for (size_t r = 0; r < slot_.size(); ++r) {
    const size_t n = size_t(stored_length(length_[r]) * width_), offset = size_t(slot_[r] * stored_ * width_);
    for (int l = 0; l < layers_; ++l) {
      std::copy_n(keys_[size_t(l)].f32() + offset, n, keys[size_t(l)].f32() + offset);
      std::copy_n(values_[size_t(l)].f32() + offset, n, values[size_t(l)].f32() + offset);
    }
    if (track_valid_)
      std::copy_n(valid_.data<uint8_t>() + slot_[r] * stored_, stored_length(length_[r]),
                  valid.data<uint8_t>() + slot_[r] * stored_);
  }
  keys_ = std::move(keys);
  values_ = std::move(values);
  valid_ = valid;
  capacity_ = capacity;
  ++allocations_;
}

int64_t KvCache::bytes() const {
  const int64_t rows = std::max<int64_t>(capacity_, 1);
  return rows * stored_ * (2 * layers_ * width_ * int64_t(sizeof(float)) + (track_valid_ ? 1 : 0));
}

float* KvCache::at(const std::vector<Tensor>& buffers, int layer, int64_t row) const {
  return buffers[size_t(layer)].f32() + slot_[size_t(row)] * stored_ * width_;
}

uint8_t* KvCache::key_valid(int64_t row) const {
  return track_valid_ ? valid_.data<uint8_t>() + slot_[size_t(row)] * stored_ : nullptr;
}

void KvCache::copy_slot(int64_t from, int64_t to, int64_t length) {
  length = stored_length(length);
  const size_t n = size_t(length * width_);
  for (int l = 0; l < layers_; ++l) {
    std::copy_n(keys_[size_t(l)].f32() + from * stored_ * width_, n,
                keys_[size_t(l)].f32() + to * stored_ * width_);
    std::copy_n(values_[size_t(l)].f32() + from * stored_ * width_, n,
                values_[size_t(l)].f32() + to * stored_ * width_);
  }
  if (track_valid_)
    std::copy_n(valid_.data<uint8_t>() + from * stored_, length, valid_.data<uint8_t>() + to * stored_);
}

void KvCache::reorder(std::span<const int64_t> parents) {
  for (int64_t p : parents) TFM_CHECK(p >= 0 && p < rows(), "reorder: parent {} of {} rows", p, rows());
  if (int64_t(parents.size()) > capacity_) allocate(int64_t(parents.size()));
  // The first child of a parent inherits its slot; later children get copies in free slots.
  slot_taken_.assign(size_t(capacity_), 0);
  new_slot_.assign(parents.size(), -1);
  new_length_.resize(parents.size());
  for (size_t i = 0; i < parents.size(); ++i) {
    const int64_t s = slot_[size_t(parents[i])];
    new_length_[i] = length_[size_t(parents[i])];
    if (!slot_taken_[size_t(s)]) new_slot_[i] = s, slot_taken_[size_t(s)] = 1;
  }
  int64_t free_slot = 0;
  for (size_t i = 0; i < parents.size(); ++i) {
    if (new_slot_[i] >= 0) continue;
    while (slot_taken_[size_t(free_slot)]) ++free_slot;
    slot_taken_[size_t(free_slot)] = 1;
    new_slot_[i] = free_slot;
    copy_slot(slot_[size_t(parents[i])], free_slot, new_length_[i]);
  }
  slot_.swap(new_slot_);
  length_.swap(new_length_);
}

}  // namespace tfm::infer
