// Training batches for an encoder-decoder, laid out as the seed's dataset does:
//   src    = [SOS] source [EOS]   (encoder input)
//   tgt_in = [SOS] target         (decoder input)
//   labels = target [EOS]         (what the decoder predicts)
// each padded with the pad id to the longest of its batch.
//
// BatchIterator buckets by length: each epoch it sorts the examples by (source length, target length),
// ties in an order drawn for that epoch, cuts them into batches of at most max_tokens padded tokens, and
// visits the batches in an order drawn for that epoch. Both draws come from (seed, epoch) alone, so a
// run that restores the position {epoch, index} sees exactly the batches it would have seen. Data
// parallelism reads shards of each batch's rows (next_shards(), epoch_order.h's RowShards).
//
// The pairs come from a PairSource: vectors in memory, or a view over a token file (token_file.h) that
// reads the ids where they are mapped.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "data/epoch_order.h"
#include "data/id_view.h"
#include "data/parallel_corpus.h"
#include "tensor/tensor.h"
#include "tokenize/tokenizer.h"

namespace tfm::data {

// Token ids of one pair, without special tokens.
struct TokenPair {
  std::vector<int32_t> src, tgt;
};

// Pairs of id sequences, by index.
class PairSource {
 public:
  virtual ~PairSource() = default;
  virtual int64_t size() const = 0;
  virtual IdView src(int64_t i) const = 0;
  virtual IdView tgt(int64_t i) const = 0;
};

// Pairs held in memory.
class MemoryPairs final : public PairSource {
 public:
  explicit MemoryPairs(std::vector<TokenPair> pairs) : pairs_(std::move(pairs)) {}
  int64_t size() const override { return int64_t(pairs_.size()); }
  IdView src(int64_t i) const override { return IdView(pairs_[size_t(i)].src); }
  IdView tgt(int64_t i) const override { return IdView(pairs_[size_t(i)].tgt); }

 private:
  std::vector<TokenPair> pairs_;
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

// Shards of one batch: rows of shards.first .. of the whole batch, and the counts of the whole batch.
struct ShardedBatch {
  std::vector<Batch> shards;  // one per shard asked for (a shard without rows has empty tensors)
  int64_t src_tokens = 0;     // non-pad tokens of the whole batch, as Batch counts them
  int64_t tgt_tokens = 0;
  int64_t first_line = 0;  // the whole batch's first example (for messages)
};

class BatchIterator {
 public:
  // Throws tfm::Error for invalid config, missing frame ids, or when no pair fits in max_len.
  BatchIterator(std::shared_ptr<const PairSource> pairs, const BatchConfig& config);
  BatchIterator(std::vector<TokenPair> pairs, const BatchConfig& config)
      : BatchIterator(std::make_shared<MemoryPairs>(std::move(pairs)), config) {}

  // The batch at position(), then advances (into the next epoch after the last batch of one).
  Batch next();
  // The same batch, only the rows of `shards`, then advances.
  ShardedBatch next_shards(const RowShards& shards);
  BatchPosition position() const { return position_; }
  // Throws tfm::Error for a negative epoch or an index outside [0, batches_per_epoch] (the end of an epoch
  // is the start of the next).
  void set_position(BatchPosition position);
  const BatchStats& stats() const { return stats_; }

 private:
  void plan_epoch(int64_t epoch);

  std::shared_ptr<const PairSource> pairs_;
  std::vector<int64_t> kept_;                       // indices of the pairs within max_len
  std::vector<std::pair<int64_t, int64_t>> sizes_;  // (source, target) id counts of every pair
  BatchConfig config_;
  BatchStats stats_;
  BatchPosition position_;
  int64_t planned_epoch_ = -1;
  std::vector<std::vector<int64_t>> plan_;  // the batches of planned_epoch_, in visiting order
};

// One batch of pairs[indices[0]], pairs[indices[1]], ... in that order, with no length limit: for
// evaluation. Batch::examples is `indices`.
Batch make_batch(const PairSource& pairs, std::span<const int64_t> indices, const FrameIds& ids);
Batch make_batch(std::span<const TokenPair> pairs, std::span<const int64_t> indices, const FrameIds& ids);
// All of `pairs`, in order.
Batch make_batch(std::span<const TokenPair> pairs, const FrameIds& ids);
// The pairs among the first `count` whose src and tgt_in fit in max_len, in order, cut into consecutive
// batches of at most max_tokens padded tokens as BatchIterator cuts an epoch: for evaluation.
std::vector<Batch> in_order_batches(const PairSource& pairs, int64_t count, int64_t max_len,
                                    int64_t max_tokens, const FrameIds& ids);

// Every sentence pair through the source and target tokenizers.
std::vector<TokenPair> encode_pairs(std::span<const SentencePair> pairs, const tokenize::Tokenizer& src,
                                    const tokenize::Tokenizer& tgt);

}  // namespace tfm::data
