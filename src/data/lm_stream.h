// Language-model batches from a token file of a Text corpus.
//
// The stream is every line's ids followed by an end-of-text id, lines in corpus order:
//   line0 <eot> line1 <eot> ...
// (the token file holds the lines; the stream is never materialised). Window w is the stream's tokens
// [w * stride, w * stride + context + 1), for every w whose window fits; its first `context` tokens are
// the inputs and its last `context` the labels (inputs shifted by one). With the default stride ==
// context, inputs never overlap and every token after the first is a label exactly once.
//
// Each epoch the windows are shuffled (from (seed, epoch) alone), cut into batches of batch_size windows
// (an incomplete last batch is dropped, so every batch has the same shape). Data parallelism reads shards
// of each batch's rows (next_shards(), epoch_order.h). A run that restores position() sees the batches it
// would have seen.
#pragma once

#include <cstdint>
#include <vector>

#include "data/epoch_order.h"
#include "data/token_file.h"
#include "tensor/tensor.h"

namespace tfm::data {

struct LmConfig {
  int64_t context = 0;     // tokens per row of inputs and of labels
  int64_t stride = 0;      // tokens between window starts; 0 means context
  int64_t batch_size = 0;  // windows per batch
  int32_t eot_id = -1;     // appended after every line
  uint64_t seed = 0;
};

struct LmBatch {
  Tensor inputs, labels;         // I64 [batch_size, context]; persistent
  std::vector<int64_t> windows;  // which windows, row by row
};

class LmStream {
 public:
  // Throws tfm::Error unless `file` is of a Text corpus, for a bad config, or when the stream holds fewer
  // windows than one batch.
  LmStream(TokenFile file, const LmConfig& config);

  int64_t stream_tokens() const { return stream_tokens_; }  // ids plus one end-of-text per line
  int64_t windows() const { return windows_; }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t batch_size() const { return config_.batch_size; }  // windows per batch
  // Window w's context + 1 tokens.
  std::vector<int32_t> window(int64_t w) const;

  // The batch at position(), then advances (into the next epoch after the last batch of one).
  LmBatch next();
  // The same batch, only the rows of `shards` (a shard without rows has empty tensors), then advances.
  std::vector<LmBatch> next_shards(const RowShards& shards);
  BatchPosition position() const { return position_; }
  // Throws tfm::Error for a negative epoch or an index outside [0, batches_per_epoch].
  void set_position(BatchPosition position);

 private:
  void plan_epoch(int64_t epoch);
  void copy_window(int64_t w, int32_t* out) const;

  TokenFile file_;
  LmConfig config_;
  int64_t stream_tokens_ = 0;
  int64_t windows_ = 0;
  int64_t batches_per_epoch_ = 0;
  BatchPosition position_;
  int64_t planned_epoch_ = -1;
  std::vector<std::vector<int64_t>> plan_;  // the batches of planned_epoch_, in visiting order
};

}  // namespace tfm::data
