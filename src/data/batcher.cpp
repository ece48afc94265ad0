#include "data/batcher.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <utility>

#include "core/error.h"

namespace tfm::data {

namespace {

int64_t src_len(const TokenPair& pair) { return int64_t(pair.src.size()) + 2; }  // [SOS] src [EOS]
int64_t tgt_len(const TokenPair& pair) { return int64_t(pair.tgt.size()) + 1; }  // [SOS] tgt / tgt [EOS]

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, n), n > 0, from the raw 64-bit draws only (so it is the same with every standard
// library): draws below 2^64 mod n are rejected, which leaves a multiple of n equally likely values.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t reject_below = (0 - n) % n;
  for (;;) {
    const uint64_t draw = rng();
    if (draw >= reject_below) return draw % n;
  }
}

// Fisher-Yates.
template <typename T>
void shuffle(std::vector<T>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[uniform_below(rng, i)]);
}

}  // namespace

Batch make_batch(std::span<const TokenPair> pairs, std::span<const int64_t> indices, const FrameIds& ids) {
  TFM_CHECK(!indices.empty(), "an empty batch");
  int64_t max_src = 0, max_tgt = 0;
  for (int64_t i : indices) {
    TFM_CHECK(i >= 0 && i < int64_t(pairs.size()), "example {} of {}", i, pairs.size());
    max_src = std::max(max_src, src_len(pairs[size_t(i)]));
    max_tgt = std::max(max_tgt, tgt_len(pairs[size_t(i)]));
  }
  const int64_t rows = int64_t(indices.size());
  Batch batch;
  batch.src = Tensor::empty_persistent({rows, max_src}, DType::I64);
  batch.tgt_in = Tensor::empty_persistent({rows, max_tgt}, DType::I64);
  batch.labels = Tensor::empty_persistent({rows, max_tgt}, DType::I64);
  int64_t* src = batch.src.data<int64_t>();
  int64_t* tgt_in = batch.tgt_in.data<int64_t>();
  int64_t* labels = batch.labels.data<int64_t>();
  std::fill_n(src, rows * max_src, ids.pad);
  std::fill_n(tgt_in, rows * max_tgt, ids.pad);
  std::fill_n(labels, rows * max_tgt, ids.pad);
  for (int64_t row = 0; row < rows; ++row) {
    const TokenPair& pair = pairs[size_t(indices[size_t(row)])];
    int64_t* s = src + row * max_src;
    s[0] = ids.sos;
    std::copy(pair.src.begin(), pair.src.end(), s + 1);
    s[pair.src.size() + 1] = ids.eos;
    int64_t* t = tgt_in + row * max_tgt;
    t[0] = ids.sos;
    std::copy(pair.tgt.begin(), pair.tgt.end(), t + 1);
    int64_t* l = labels + row * max_tgt;
    std::copy(pair.tgt.begin(), pair.tgt.end(), l);
    l[pair.tgt.size()] = ids.eos;
    batch.src_tokens += src_len(pair);
    batch.tgt_tokens += tgt_len(pair);
  }
  batch.examples.assign(indices.begin(), indices.end());
  return batch;
}

Batch make_batch(std::span<const TokenPair> pairs, const FrameIds& ids) {
  std::vector<int64_t> all(pairs.size());
  std::iota(all.begin(), all.end(), 0);
  return make_batch(pairs, all, ids);
}

BatchIterator::BatchIterator(std::vector<TokenPair> pairs, const BatchConfig& config)
    : pairs_(std::move(pairs)), config_(config) {
  const FrameIds& ids = config.ids;
  if (ids.pad < 0 || ids.sos < 0 || ids.eos < 0)
    fail("batcher: pad, SOS and EOS ids must be set (got {}, {}, {})", ids.pad, ids.sos, ids.eos);
  if (config.max_len < 2) fail("batcher: max_len {} is below 2", config.max_len);
  if (config.max_tokens < config.max_len)
    fail("batcher: max_tokens {} is below max_len {}", config.max_tokens, config.max_len);
  for (size_t i = 0; i < pairs_.size(); ++i) {
    if (src_len(pairs_[i]) <= config.max_len && tgt_len(pairs_[i]) <= config.max_len)
      kept_.push_back(int64_t(i));
  }
  stats_.pairs = int64_t(pairs_.size());
  stats_.skipped_too_long = stats_.pairs - int64_t(kept_.size());
  if (kept_.empty())
    fail("batcher: none of the {} pairs fits in max_len {} tokens", pairs_.size(), config.max_len);
  plan_epoch(0);
  stats_.batches_per_epoch = int64_t(plan_.size());
}

void BatchIterator::plan_epoch(int64_t epoch) {
  std::mt19937_64 rng(splitmix64(config_.seed ^ splitmix64(uint64_t(epoch))));
  std::vector<int64_t> order = kept_;
  shuffle(order, rng);  // the order of equal lengths
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const TokenPair &x = pairs_[size_t(a)], &y = pairs_[size_t(b)];
    return std::pair(x.src.size(), x.tgt.size()) < std::pair(y.src.size(), y.tgt.size());
  });
  plan_.clear();
  std::vector<int64_t> batch;
  int64_t width = 0;  // max(S, T) of `batch`
  for (int64_t i : order) {
    const int64_t grown = std::max({width, src_len(pairs_[size_t(i)]), tgt_len(pairs_[size_t(i)])});
    if (!batch.empty() && int64_t(batch.size() + 1) * grown > config_.max_tokens) {
      plan_.push_back(std::move(batch));
      batch.clear();
      width = 0;
    }
    batch.push_back(i);
    width = std::max({width, src_len(pairs_[size_t(i)]), tgt_len(pairs_[size_t(i)])});
  }
  plan_.push_back(std::move(batch));
  shuffle(plan_, rng);
  planned_epoch_ = epoch;
}

Batch BatchIterator::next() {
  if (planned_epoch_ != position_.epoch) plan_epoch(position_.epoch);
  Batch batch = make_batch(pairs_, plan_[size_t(position_.index)], config_.ids);
  set_position({position_.epoch, position_.index + 1});
  return batch;
}

void BatchIterator::set_position(BatchPosition position) {
  if (position.epoch < 0 || position.index < 0 || position.index > stats_.batches_per_epoch)
    fail("batcher: position (epoch {}, batch {}) is outside epochs of {} batches", position.epoch,
         position.index, stats_.batches_per_epoch);
  position_ = position;
  if (position_.index == stats_.batches_per_epoch) position_ = {position_.epoch + 1, 0};
}

std::vector<TokenPair> encode_pairs(std::span<const SentencePair> pairs, const tokenize::Tokenizer& src,
                                    const tokenize::Tokenizer& tgt) {
  std::vector<TokenPair> encoded;
  encoded.reserve(pairs.size());
  for (const SentencePair& pair : pairs) encoded.push_back({src.encode(pair.src), tgt.encode(pair.tgt)});
  return encoded;
}

}  // namespace tfm::data
