// One batched pass of new tokens through a model's decoder over KV caches. The rows of a pass may belong to
// different caches: ModelDecoder feeds the rows of its one cache, the server (serve/scheduler.h) feeds the
// rows of many requests, each with its own cache, in one forward.
//
// The new tokens of all rows go through the position-wise layers as one flattened sequence; attention runs
// per row over that row's own keys. Every matrix product of the pass is row-invariant
// (kernels::RowInvariantGemmScope), so a row's logits are bit-identical whatever other rows share the pass.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "autograd/tape.h"
#include "infer/kv_cache.h"
#include "models/transformer.h"
#include "nn/attention.h"

namespace tfm::infer {

// The encoded sources of an encoder-decoder: per decoder layer, the cross-attention keys and values of
// every source [sources, length, width], and the sources' padding flags U8 [sources, length].
struct EncodedSources {
  std::vector<Tensor> keys, values;
  Tensor valid;
  int64_t count = 0, length = 0;
};

// Encodes `sources` (token ids as the model expects them framed, none empty) in one batch, right-padded
// with pad_id (masked as keys). The tensors are persistent.
EncodedSources encode_sources(const Transformer& model, ag::Tape& tape,
                              const std::vector<std::vector<int64_t>>& sources);

// One row of a pass: `tokens` (non-empty) appended to row `row` of `cache`; an encoder-decoder row
// attends to source `source_index` of `source`.
struct RowFeed {
  KvCache* cache = nullptr;
  int64_t row = 0;
  std::span<const int64_t> tokens;
  const EncodedSources* source = nullptr;
  int64_t source_index = 0;
};

// Throws when `feed` would overfill its row (the cache's max_positions) or holds a token outside [0, vocab):
// what run() checks of every row, for callers that check a row before it joins a pass.
void check_room_and_tokens(const RowFeed& feed, int64_t vocab);

class DecodeBatch {
 public:
  // Feeds every row its tokens (rows distinct; every cache with the model's layout) and returns the logits
  // after each row's last token: F32 [feeds.size(), vocab], valid until the next run.
  Tensor run(const Transformer& model, std::span<const RowFeed> feeds);
  // Heap blocks the per-pass arena ever took (a steady-state decoding step takes none).
  size_t arena_heap_allocations() { return tape_.arena().heap_allocations(); }

 private:
  ag::Tape tape_;
  // Per-call scratch, kept to avoid allocating every step.
  std::vector<int64_t> offsets_, past_, key_len_;
  std::vector<std::vector<float*>> keys_, values_, cross_k_, cross_v_;
  std::vector<const uint8_t*> valid_, cross_valid_;
  std::vector<nn::CachedRows> self_rows_, cross_rows_;
};

// A KV cache for `rows` rows of `max_positions` tokens (0: the model's max_len) laid out as the model's
// attention needs (ring for a sliding window, sums for linear attention, padding flags for the seed's
// decoder); room for `capacity` rows.
KvCache make_kv_cache(const Transformer& model, int64_t rows, int64_t max_positions, int64_t capacity);

}  // namespace tfm::infer
