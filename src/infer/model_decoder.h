// DecoderStep over a Transformer with a KV cache: each step feeds only the new tokens through the
// decoder (infer/decode_batch.h); self-attention keys and values are cached per row (infer/kv_cache.h), and
// an encoder-decoder encodes its sources once and projects the cross-attention keys and values once per
// source.
#pragma once

#include <cstdint>
#include <vector>

#include "infer/decode_batch.h"
#include "infer/decoder_step.h"
#include "infer/kv_cache.h"
#include "models/transformer.h"

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
  size_t arena_heap_allocations() { return batch_.arena_heap_allocations(); }

 private:
  // Feeds tokens_[offsets_[i] .. offsets_[i+1]) to rows[i]; the logits after each row's last token.
  Tensor run(std::span<const int64_t> rows);

  const Transformer& model_;
  int64_t prefill_chunk_;
  KvCache cache_;
  DecodeBatch batch_;
  // Encoder-decoder: the encoded sources, and which source each row attends to.
  EncodedSources sources_;
  std::vector<int64_t> row_source_, next_row_source_;
  // Per-call scratch, kept to avoid allocating every step.
  std::vector<int64_t> tokens_, offsets_;
  std::vector<RowFeed> feeds_;
};

}  // namespace tfm::infer
