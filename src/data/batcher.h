// Training batches for an encoder-decoder, laid out as the seed's dataset does:
//   src    = [SOS] source [EOS]   (encoder input)
//   tgt_in = [SOS] target         (decoder input)
//   labels = target [EOS]         (what the decoder predicts)
// each padded with the pad id to the longest of its batch.
//
// BatchIterator buckets by length: each epoch it sorts the examples by (source length, target length),
// ties in an order drawn for that epoch, cuts them into batches of at most max_tokens padded tokens, and
// visits the batches in an order drawn for that epoch. Both draws come from (seed, epoch) alone, so a
// run that restores the position {epoch, index} sees exactly the batches it would have seen.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "data/parallel_corpus.h"
#include "tensor/tensor.h"
#include "tokenize/tokenizer.h"

namespace tfm::data {

// Token ids of one pair, without special tokens.
struct TokenPair {
  std::vector<int32_t> src, tgt;
};

// The ids that frame and pad the sequences (the same for source and target).
struct FrameIds {
  int32_t pad = -1, sos = -1, eos = -1;
};

struct Batch {
  Tensor src, tgt_in, labels;     // I64 [B, S], [B, T], [B, T]; persistent (never from an arena)
  int64_t src_tokens = 0;         // non-pad tokens in src
  int64_t tgt_tokens = 0;         // non-pad tokens in labels
  std::vector<int64_t> examples;  // which examples, as indices into the pairs given, row by row
};

struct BatchConfig {
  FrameIds ids;
  int64_t max_len = 0;     // longest src / tgt_in kept, in tokens (SOS and EOS included)
  int64_t max_tokens = 0;  // rows * max(S, T) <= max_tokens; must be >= max_len
  uint64_t seed = 0;
};

struct BatchStats {
  int64_t pairs = 0;             // pairs given
  int64_t skipped_too_long = 0;  // pairs whose src or tgt_in would exceed max_len
  int64_t batches_per_epoch = 0;
};

// The next batch that BatchIterator::next() returns: batch `index` of epoch `epoch` (both from 0;
// index < batches_per_epoch).
struct BatchPosition {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const BatchPosition&) const = default;
};

class BatchIterator {
 public:
  // Throws tfm::Error for invalid config, missing frame ids, or when no pair fits in max_len.
  BatchIterator(std::vector<TokenPair> pairs, const BatchConfig& config);

  // The batch at position(), then advances (into the next epoch after the last batch of one).
  Batch next();
  BatchPosition position() const { return position_; }
  // Throws tfm::Error for a negative epoch or an index outside [0, batches_per_epoch] (the end of an epoch
  // is the start of the next).
  void set_position(BatchPosition position);
  const BatchStats& stats() const { return stats_; }

 private:
  void plan_epoch(int64_t epoch);

  std::vector<TokenPair> pairs_;
  std::vector<int64_t> kept_;  // indices of the pairs within max_len
  BatchConfig config_;
  BatchStats stats_;
  BatchPosition position_;
  int64_t planned_epoch_ = -1;
  std::vector<std::vector<int64_t>> plan_;  // the batches of planned_epoch_, in visiting order
};

// One batch of pairs[indices[0]], pairs[indices[1]], ... in that order, with no length limit: for
// evaluation. Batch::examples is `indices`.
Batch make_batch(std::span<const TokenPair> pairs, std::span<const int64_t> indices, const FrameIds& ids);
// All of `pairs`, in order.
Batch make_batch(std::span<const TokenPair> pairs, const FrameIds& ids);

// Every sentence pair through the source and target tokenizers.
std::vector<TokenPair> encode_pairs(std::span<const SentencePair> pairs, const tokenize::Tokenizer& src,
                                    const tokenize::Tokenizer& tgt);

}  // namespace tfm::data
