// DecoderStep over a Transformer with a KV cache: each step feeds only the new tokens through the
// decoder; self-attention keys and values are cached per row (infer/kv_cache.h), and an encoder-decoder
// encodes its sources once and projects the cross-attention keys and values once per source.
//
// The new tokens of all stepped rows go through the position-wise layers as one flattened sequence (no
// padding at all, whatever the rows' lengths); attention runs per row over that row's own keys.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/tape.h"
#include "infer/decoder_step.h"
#include "infer/kv_cache.h"
#include "models/transformer.h"
#include "nn/attention.h"

namespace tfm::infer {

struct DecoderLimits {
  int64_t max_positions = 0;  // tokens a row may hold (prompt + fed tokens); 0 or more: the model's max_len
  int64_t max_rows = 0;       // rows held at once, e.g. sources x beams (more reallocates the cache)
  // Longer prompts go through prefill() in passes of this many tokens per row, so a pass's activations
  // (which set the peak memory of generating after a long prompt) stay bounded; the logits are the same.
  int64_t prefill_chunk = 1024;
};

class ModelDecoder final : public DecoderStep {
 public:
  // An encoder-decoder: encodes `sources` (token ids, framed as the model expects, none empty) in one
  // batch; row s attends to source s.
  ModelDecoder(const Transformer& model, const std::vector<std::vector<int64_t>>& sources,
               const DecoderLimits& limits);
  // A decoder-only model: `rows` empty rows.
  ModelDecoder(const Transformer& model, int64_t rows, const DecoderLimits& limits);

  int64_t vocab_size() const override { return model_.config().tgt_vocab; }
  Tensor step(std::span<const int64_t> rows, std::span<const int64_t> tokens) override;
  // One batched pass over every prompt (passes of limits.prefill_chunk tokens per row for longer ones).
  Tensor prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts) override;
  void reorder(std::span<const int64_t> parents) override;

  const KvCache& cache() const { return cache_; }
  // Heap blocks the per-step arena ever took (a steady-state decoding step takes none).
  size_t arena_heap_allocations() { return tape_.arena().heap_allocations(); }

 private:
  void encode(const std::vector<std::vector<int64_t>>& sources);
  // Feeds tokens[offsets[i] .. offsets[i+1]) to rows[i]; the logits after each row's last token.
  Tensor run(std::span<const int64_t> rows);

  const Transformer& model_;
  int64_t prefill_chunk_;
  KvCache cache_;
  ag::Tape tape_;
  // Encoder-decoder: per layer, the cross-attention keys / values [sources, src_len, width], the
  // sources' padding U8 [sources, src_len], and which source each row attends to.
  std::vector<Tensor> cross_keys_, cross_values_;
  Tensor source_valid_;
  int64_t source_len_ = 0;
  std::vector<int64_t> row_source_, next_row_source_;
  // Per-call scratch, kept to avoid allocating every step.
  std::vector<int64_t> tokens_, offsets_, past_, key_len_;
  std::vector<std::vector<float*>> keys_, values_, cross_k_, cross_v_;
  std::vector<const uint8_t*> valid_, cross_valid_;
  std::vector<nn::CachedRows> self_rows_, cross_rows_;
  std::vector<uint8_t> seen_;
};

}  // namespace tfm::infer
