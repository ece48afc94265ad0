// The self-attention keys and values of every decoder layer for a set of decoder rows (one row: one
// sequence being decoded), preallocated once for `max_positions` tokens per row so that decoding steps
// only write into it.
//
// With a sliding window w (Mistral), a row needs only its last w keys: the cache is then a ring of `ring`
// = w positions per row, position p stored at p % ring, and a row may grow past `ring` tokens (up to
// max_positions) in O(w) memory (nn::CachedRows::ring says how attention reads it). Block-sparse attention
// also keeps its `sinks` = g global tokens: positions p < g at row p, the others in the ring after them
// (row g + (p - g) % ring).
//
// Linear attention needs no keys at all, only its running sums (kernels/cpu/linear_attention.h): with
// `state_rows` = head_dim, each row's keys buffer holds the sums S and its values buffer z, a fixed
// O(head_dim^2) state per layer however long the row.
//
// Rows live in slots; reorder() (beam search following its beams) hands a surviving parent's slot to
// its first child and copies it only for further children, into slots of dropped rows, so a step
// copies only the beams that were duplicated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "tensor/tensor.h"

namespace tfm::infer {

// What a row stores besides keys per position (see above); all zero: every position's key.
struct KvLayout {
  int64_t ring = 0;   // > 0: a ring of that many positions (at most max_positions; not with track_valid)
  int64_t sinks = 0;  // with a ring: that many first positions kept as well
  int64_t state_rows =
      0;  // > 0: linear attention's sums in that many key rows (not with a ring or track_valid)
};

class KvCache {
 public:
  // `width`: floats per key (kv_heads * head_dim). Room for `capacity` rows (at least `rows`) is
  // allocated now; reorder() to more rows than that reallocates (see allocations()).
  // With `track_valid`, each cached token also carries a 0/1 flag (decoder padding masked as keys).
  KvCache(int layers, int64_t width, int64_t max_positions, int64_t rows, int64_t capacity, bool track_valid,
          const KvLayout& layout = {});

  int64_t rows() const { return int64_t(slot_.size()); }
  int64_t max_positions() const { return max_positions_; }  // tokens a row may hold
  int64_t ring() const { return ring_; }                    // 0: no ring
  int64_t sinks() const { return sinks_; }                  // first positions kept besides the ring
  bool state() const { return state_; }                     // linear attention's sums, not keys
  int64_t stored_positions() const { return stored_; }  // key rows per row: ring, state rows or max_positions
  int64_t length(int64_t row) const { return length_[size_t(row)]; }
  // Row `row`'s stored_positions() key (value) rows of layer `layer`, time-major, `width` floats each.
  float* keys(int layer, int64_t row) const { return at(keys_, layer, row); }
  float* values(int layer, int64_t row) const { return at(values_, layer, row); }
  // The row's per-token flags (1 = may be attended to), or nullptr without track_valid.
  uint8_t* key_valid(int64_t row) const;
  // Counts `count` tokens more in the row, after the layers wrote their keys and values at length(row).
  void append(int64_t row, int64_t count) { length_[size_t(row)] += count; }
  // Afterwards row i is a copy of the former row parents[i] (DecoderStep::reorder).
  void reorder(std::span<const int64_t> parents);
  // Bytes the buffers take (all `capacity` rows, every layer's keys and values, the padding flags).
  int64_t bytes() const;
  // Times the buffers were allocated (1 after construction; more only when reorder() outgrew them).
  int64_t allocations() const { return allocations_; }

 private:
  float* at(const std::vector<Tensor>& buffers, int layer, int64_t row) const;
  // Key rows a row of `length` tokens fills.
  int64_t stored_length(int64_t length) const {
    return state_ && length > 0 ? stored_ : std::min(length, stored_);
  }
  void allocate(int64_t capacity);
  void copy_slot(int64_t from, int64_t to, int64_t length);

  int layers_;
  int64_t width_, max_positions_, ring_, sinks_, stored_, capacity_ = 0;
  bool state_, track_valid_;
  std::vector<Tensor> keys_, values_;   // per layer [capacity, stored, width]
  Tensor valid_;                        // U8 [capacity, stored] with track_valid
  std::vector<int64_t> slot_, length_;  // per row
  std::vector<int64_t> new_slot_, new_length_;
  std::vector<uint8_t> slot_taken_;
  int64_t allocations_ = 0;
};

}  // namespace tfm::infer
