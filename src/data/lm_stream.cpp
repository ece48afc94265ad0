#include "data/lm_stream.h"

#include <algorithm>
#include <numeric>
#include <ranges>
#include <utility>

#include "core/error.h"

namespace tfm::data {

LmStream::LmStream(TokenFile file, const LmConfig& config) : file_(std::move(file)), config_(config) {
  if (file_.streams() != 1)
    fail("{}: language-model windows need a token file of a text corpus, not of sentence pairs",
         file_.path());
  if (config_.context < 1) fail("lm stream: context {} is below 1", config_.context);
  if (config_.stride == 0) config_.stride = config_.context;
  if (config_.stride < 1) fail("lm stream: stride {} is below 1", config_.stride);
  if (config_.batch_size < 1) fail("lm stream: batch_size {} is below 1", config_.batch_size);
  const int32_t vocab = file_.info().tokenizers[0].vocab_size;
  if (config_.eot_id < 0 || config_.eot_id >= vocab)
    fail("lm stream: end-of-text id {} is outside the vocabulary of {}", config_.eot_id, vocab);
  stream_tokens_ = file_.tokens() + file_.records();
  const int64_t window_tokens = config_.context + 1;
  windows_ = stream_tokens_ < window_tokens ? 0 : (stream_tokens_ - window_tokens) / config_.stride + 1;
  batches_per_epoch_ = windows_ / config_.batch_size;
  if (batches_per_epoch_ < 1)
    fail("{}: {} tokens make {} windows of {} tokens (stride {}): not a batch of {}", file_.path(),
         stream_tokens_, windows_, window_tokens, config_.stride, config_.batch_size);
}

void LmStream::copy_window(int64_t w, int32_t* out) const {
  TFM_CHECK(w >= 0 && w < windows_, "window {} of {}", w, windows_);
  // Line k starts at stream position sequence_start(k) + k (k end-of-text ids come before it).
  const int64_t begin = w * config_.stride;
  int64_t k = *std::ranges::partition_point(std::views::iota(int64_t(1), file_.records()), [&](int64_t j) {
    return file_.sequence_start(j) + j <= begin;
  }) - 1;
  int64_t at = begin - (file_.sequence_start(k) + k);  // within line k; its length is its end-of-text
  for (int64_t filled = 0; filled < config_.context + 1;) {
    const IdView line = file_.sequence(k);
    if (at < line.size()) {
      const int64_t n = std::min(line.size() - at, config_.context + 1 - filled);
      line.subview(at, n).copy_to(out + filled);
      filled += n;
      at += n;
    } else {
      out[filled++] = config_.eot_id;
      ++k;
      at = 0;
    }
  }
}

std::vector<int32_t> LmStream::window(int64_t w) const {
  std::vector<int32_t> tokens(static_cast<size_t>(config_.context + 1));
  copy_window(w, tokens.data());
  return tokens;
}

void LmStream::plan_epoch(int64_t epoch) {
  std::mt19937_64 rng = epoch_rng(config_.seed, epoch);
  std::vector<int64_t> order(static_cast<size_t>(windows_));
  std::iota(order.begin(), order.end(), int64_t(0));
  shuffle(order, rng);
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; (b + 1) * config_.batch_size <= windows_; ++b)
    batches.emplace_back(order.begin() + b * config_.batch_size,
                         order.begin() + (b + 1) * config_.batch_size);
  plan_ = std::move(batches);
  planned_epoch_ = epoch;
}

LmBatch LmStream::next() { return std::move(next_shards({})[0]); }

std::vector<LmBatch> LmStream::next_shards(const RowShards& shards) {
  check_shards(shards);
  if (planned_epoch_ != position_.epoch) plan_epoch(position_.epoch);
  std::vector<LmBatch> out;
  for (int64_t k = shards.first; k < shards.first + shards.count; ++k) {
    LmBatch& batch = out.emplace_back();
    batch.windows = shard_rows(plan_[size_t(position_.index)], k, shards.of);
    const int64_t rows = int64_t(batch.windows.size()), context = config_.context;
    if (rows == 0) continue;
    batch.inputs = Tensor::empty_persistent({rows, context}, DType::I64);
    batch.labels = Tensor::empty_persistent({rows, context}, DType::I64);
    std::vector<int32_t> tokens(static_cast<size_t>(context + 1));
    for (int64_t row = 0; row < rows; ++row) {
      copy_window(batch.windows[size_t(row)], tokens.data());
      std::copy(tokens.begin(), tokens.end() - 1, batch.inputs.data<int64_t>() + row * context);
      std::copy(tokens.begin() + 1, tokens.end(), batch.labels.data<int64_t>() + row * context);
    }
  }
  set_position({position_.epoch, position_.index + 1});
  return out;
}

void LmStream::set_position(BatchPosition position) {
  position_ = normalized_position(position, batches_per_epoch_, "lm stream");
}

}  // namespace tfm::data
