#include "data/batcher.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/error.h"

namespace tfm::data {

namespace {

// [SOS] src [EOS] and [SOS] tgt / tgt [EOS], from the id counts.
int64_t src_len(int64_t src_ids) { return src_ids + 2; }
int64_t tgt_len(int64_t tgt_ids) { return tgt_ids + 1; }
bool fits(int64_t src_ids, int64_t tgt_ids, int64_t max_len) {
  return src_len(src_ids) <= max_len && tgt_len(tgt_ids) <= max_len;
}

// `order` cut into consecutive batches, each as long as rows * max(S, T) stays within max_tokens (a pair
// wider than that on its own is a batch of one). ids_of(i) gives pair i's (source, target) id counts.
template <typename IdsOf>
std::vector<std::vector<int64_t>> cut_by_token_budget(std::span<const int64_t> order, IdsOf ids_of,
                                                      int64_t max_tokens) {
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> batch;
  int64_t width = 0;  // max(S, T) of `batch`
  for (int64_t i : order) {
    const auto [src_ids, tgt_ids] = ids_of(i);
    const int64_t longest = std::max(src_len(src_ids), tgt_len(tgt_ids));
    if (!batch.empty() && int64_t(batch.size() + 1) * std::max(width, longest) > max_tokens) {
      batches.push_back(std::move(batch));
      batch.clear();
      width = 0;
    }
    batch.push_back(i);
    width = std::max(width, longest);
  }
  if (!batch.empty()) batches.push_back(std::move(batch));
  return batches;
}

// A view of pairs in a span, for make_batch.
class SpanPairs final : public PairSource {
 public:
  explicit SpanPairs(std::span<const TokenPair> pairs) : pairs_(pairs) {}
  int64_t size() const override { return int64_t(pairs_.size()); }
  IdView src(int64_t i) const override { return IdView(pairs_[size_t(i)].src); }
  IdView tgt(int64_t i) const override { return IdView(pairs_[size_t(i)].tgt); }

 private:
  std::span<const TokenPair> pairs_;
};

}  // namespace

Batch make_batch(const PairSource& pairs, std::span<const int64_t> indices, const FrameIds& ids) {
  TFM_CHECK(!indices.empty(), "an empty batch");
  int64_t max_src = 0, max_tgt = 0;
  for (int64_t i : indices) {
    TFM_CHECK(i >= 0 && i < pairs.size(), "example {} of {}", i, pairs.size());
    max_src = std::max(max_src, src_len(pairs.src(i).size()));
    max_tgt = std::max(max_tgt, tgt_len(pairs.tgt(i).size()));
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
    const IdView source = pairs.src(indices[size_t(row)]);
    const IdView target = pairs.tgt(indices[size_t(row)]);
    int64_t* s = src + row * max_src;
    s[0] = ids.sos;
    source.copy_to(s + 1);
    s[source.size() + 1] = ids.eos;
    int64_t* t = tgt_in + row * max_tgt;
    t[0] = ids.sos;
    target.copy_to(t + 1);
    int64_t* l = labels + row * max_tgt;
    target.copy_to(l);
    l[target.size()] = ids.eos;
    batch.src_tokens += src_len(source.size());
    batch.tgt_tokens += tgt_len(target.size());
  }
  batch.examples.assign(indices.begin(), indices.end());
  return batch;
}

Batch make_batch(std::span<const TokenPair> pairs, std::span<const int64_t> indices, const FrameIds& ids) {
  return make_batch(SpanPairs(pairs), indices, ids);
}

Batch make_batch(std::span<const TokenPair> pairs, const FrameIds& ids) {
  std::vector<int64_t> all(pairs.size());
  std::iota(all.begin(), all.end(), 0);
  return make_batch(pairs, all, ids);
}

std::vector<Batch> in_order_batches(const PairSource& pairs, int64_t count, int64_t max_len,
                                    int64_t max_tokens, const FrameIds& ids) {
  TFM_CHECK(count >= 0 && count <= pairs.size(), "the first {} of {} pairs", count, pairs.size());
  auto ids_of = [&](int64_t i) { return std::pair(pairs.src(i).size(), pairs.tgt(i).size()); };
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < count; ++i) {
    const auto [src_ids, tgt_ids] = ids_of(i);
    if (fits(src_ids, tgt_ids, max_len)) kept.push_back(i);
  }
  std::vector<Batch> batches;
  for (const std::vector<int64_t>& rows : cut_by_token_budget(kept, ids_of, max_tokens))
    batches.push_back(make_batch(pairs, rows, ids));
  return batches;
}

BatchIterator::BatchIterator(std::shared_ptr<const PairSource> pairs, const BatchConfig& config)
    : pairs_(std::move(pairs)), config_(config) {
  const FrameIds& ids = config.ids;
  if (ids.pad < 0 || ids.sos < 0 || ids.eos < 0)
    fail("batcher: pad, SOS and EOS ids must be set (got {}, {}, {})", ids.pad, ids.sos, ids.eos);
  if (config.max_len < 2) fail("batcher: max_len {} is below 2", config.max_len);
  if (config.max_tokens < config.max_len)
    fail("batcher: max_tokens {} is below max_len {}", config.max_tokens, config.max_len);
  const int64_t count = pairs_->size();
  sizes_.reserve(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    sizes_.emplace_back(pairs_->src(i).size(), pairs_->tgt(i).size());
    if (fits(sizes_.back().first, sizes_.back().second, config.max_len)) kept_.push_back(i);
  }
  stats_.pairs = count;
  stats_.skipped_too_long = stats_.pairs - int64_t(kept_.size());
  if (kept_.empty()) fail("batcher: none of the {} pairs fits in max_len {} tokens", count, config.max_len);
  // The cut points depend on the sorted lengths only, so every epoch has as many batches.
  plan_epoch(0);
  stats_.batches_per_epoch = int64_t(plan_.size());
}

void BatchIterator::plan_epoch(int64_t epoch) {
  std::mt19937_64 rng = epoch_rng(config_.seed, epoch);
  std::vector<int64_t> order = kept_;
  shuffle(order, rng);  // the order of equal lengths
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sizes_[size_t(a)] < sizes_[size_t(b)]; });
  std::vector<std::vector<int64_t>> plan = cut_by_token_budget(
      order, [&](int64_t i) { return sizes_[size_t(i)]; }, config_.max_tokens);
  shuffle(plan, rng);
  plan_ = std::move(plan);
  planned_epoch_ = epoch;
}

Batch BatchIterator::next() { return std::move(next_shards({}).shards[0]); }

ShardedBatch BatchIterator::next_shards(const RowShards& shards) {
  check_shards(shards);
  if (planned_epoch_ != position_.epoch) plan_epoch(position_.epoch);
  const std::vector<int64_t>& rows = plan_[size_t(position_.index)];
  ShardedBatch out;
  for (int64_t k = shards.first; k < shards.first + shards.count; ++k) {
    const std::vector<int64_t> mine = shard_rows(rows, k, shards.of);
    out.shards.push_back(mine.empty() ? Batch{} : make_batch(*pairs_, mine, config_.ids));
  }
  // Source rows are SOS + ids + EOS, label rows ids + EOS (make_batch's counts), from the lengths alone.
  for (int64_t i : rows) {
    out.src_tokens += sizes_[size_t(i)].first + 2;
    out.tgt_tokens += sizes_[size_t(i)].second + 1;
  }
  out.first_line = rows.empty() ? 0 : rows[0];
  set_position({position_.epoch, position_.index + 1});
  return out;
}

void BatchIterator::set_position(BatchPosition position) {
  position_ = normalized_position(position, stats_.batches_per_epoch, "batcher");
}

std::vector<TokenPair> encode_pairs(std::span<const SentencePair> pairs, const tokenize::Tokenizer& src,
                                    const tokenize::Tokenizer& tgt) {
  std::vector<TokenPair> encoded;
  encoded.reserve(pairs.size());
  for (const SentencePair& pair : pairs) encoded.push_back({src.encode(pair.src), tgt.encode(pair.tgt)});
  return encoded;
}

}  // namespace tfm::data
