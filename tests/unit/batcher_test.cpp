#include "data/batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "test_support.h"

namespace tfm::data {
namespace {

constexpr FrameIds kIds{.pad = 1, .sos = 2, .eos = 3};

std::vector<int64_t> row(const Tensor& t, int64_t r) {
  std::vector<int64_t> values;
  for (int64_t c = 0; c < t.size(1); ++c) values.push_back(int64_t(t.at({r, c})));
  return values;
}

// Pairs whose lengths vary: source i % 13 words, target (i * 7) % 11 words; ids from 10 up.
std::vector<TokenPair> make_pairs(int n) {
  std::vector<TokenPair> pairs;
  for (int i = 0; i < n; ++i) {
    TokenPair pair;
    for (int k = 0; k < i % 13; ++k) pair.src.push_back(10 + (i + k) % 50);
    for (int k = 0; k < (i * 7) % 11; ++k) pair.tgt.push_back(10 + (i * 3 + k) % 50);
    pairs.push_back(pair);
  }
  return pairs;
}

BatchConfig config(uint64_t seed = 7) { return {.ids = kIds, .max_len = 12, .max_tokens = 64, .seed = seed}; }

std::vector<std::vector<int64_t>> epoch_examples(BatchIterator& it) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; b < it.stats().batches_per_epoch; ++b) batches.push_back(it.next().examples);
  return batches;
}

TEST(Batcher, LayoutOfSosEosAndPad) {
  const std::vector<TokenPair> pairs = {{{10, 11, 12}, {20}}, {{13}, {21, 22, 23}}};
  const Batch batch = make_batch(pairs, kIds);
  ASSERT_EQ(batch.src.shape(), Shape({2, 5}));
  ASSERT_EQ(batch.tgt_in.shape(), Shape({2, 4}));
  ASSERT_EQ(batch.labels.shape(), Shape({2, 4}));
  EXPECT_EQ(batch.src.dtype(), DType::I64);
  EXPECT_EQ(row(batch.src, 0), (std::vector<int64_t>{2, 10, 11, 12, 3}));
  EXPECT_EQ(row(batch.src, 1), (std::vector<int64_t>{2, 13, 3, 1, 1}));
  EXPECT_EQ(row(batch.tgt_in, 0), (std::vector<int64_t>{2, 20, 1, 1}));
  EXPECT_EQ(row(batch.tgt_in, 1), (std::vector<int64_t>{2, 21, 22, 23}));
  EXPECT_EQ(row(batch.labels, 0), (std::vector<int64_t>{20, 3, 1, 1}));
  EXPECT_EQ(row(batch.labels, 1), (std::vector<int64_t>{21, 22, 23, 3}));
  EXPECT_EQ(batch.src_tokens, 5 + 3);
  EXPECT_EQ(batch.tgt_tokens, 2 + 4);
  EXPECT_EQ(batch.examples, (std::vector<int64_t>{0, 1}));

  const std::vector<int64_t> reversed = {1, 0};
  EXPECT_EQ(row(make_batch(pairs, reversed, kIds).src, 0), (std::vector<int64_t>{2, 13, 3, 1, 1}));
}

TEST(Batcher, InOrderBatchesKeepOrderAndCutAtTheBudget) {
  // (source ids, target ids) -> max(S, T) with S = ids + 2, T = ids + 1.
  const auto pair = [](int src_ids, int tgt_ids) {
    return TokenPair{std::vector<int32_t>(size_t(src_ids), 10), std::vector<int32_t>(size_t(tgt_ids), 20)};
  };
  const MemoryPairs pairs({pair(1, 1),    // 0: width 3
                           pair(2, 0),    // 1: width 4
                           pair(9, 1),    // 2: S = 11 > max_len 6, left out
                           pair(3, 4),    // 3: width 5
                           pair(1, 1),    // 4: width 3
                           pair(0, 5),    // 5: width 6
                           pair(1, 1)});  // 6: past count
  // Budget 10: {0, 1} is 2 x 4; adding 3 would make 3 x 5. {3, 4} is 2 x 5; adding 5 would make 3 x 6.
  const std::vector<Batch> batches = in_order_batches(pairs, 6, /*max_len=*/6, /*max_tokens=*/10, kIds);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].examples, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(batches[1].examples, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(batches[2].examples, (std::vector<int64_t>{5}));
  EXPECT_EQ(batches[1].src.shape(), Shape({2, 5}));
  EXPECT_EQ(batches[2].labels.shape(), Shape({1, 6}));
}

TEST(Batcher, EveryExampleOncePerEpochWithinBudget) {
  const auto pairs = make_pairs(300);
  BatchIterator it(pairs, config());
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < 300; ++i)
    if (int64_t(pairs[i].src.size()) + 2 <= 12 && int64_t(pairs[i].tgt.size()) + 1 <= 12) kept.push_back(i);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    for (int64_t b = 0; b < it.stats().batches_per_epoch; ++b) {
      EXPECT_EQ(it.position(), (BatchPosition{epoch, b}));
      const Batch batch = it.next();
      const int64_t rows = batch.src.size(0);
      EXPECT_LE(rows * std::max(batch.src.size(1), batch.tgt_in.size(1)), 64);
      EXPECT_EQ(int64_t(batch.examples.size()), rows);
      seen.insert(seen.end(), batch.examples.begin(), batch.examples.end());
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, kept) << "epoch " << epoch;
  }
}

TEST(Batcher, OverLongPairsAreSkippedAndCounted) {
  std::vector<TokenPair> pairs = {
      {std::vector<int32_t>(10, 5), std::vector<int32_t>(11, 5)},  // 12 and 12 tokens: fits exactly
      {std::vector<int32_t>(11, 5), std::vector<int32_t>(1, 5)},   // src 13 tokens
      {std::vector<int32_t>(1, 5), std::vector<int32_t>(12, 5)},   // tgt_in 13 tokens
      {{}, {}},                                                    // [SOS] [EOS] / [SOS]
  };
  BatchIterator it(pairs, config());
  EXPECT_EQ(it.stats().pairs, 4);
  EXPECT_EQ(it.stats().skipped_too_long, 2);
  std::vector<int64_t> seen;
  for (int64_t b = 0; b < it.stats().batches_per_epoch; ++b) {
    auto examples = it.next().examples;
    seen.insert(seen.end(), examples.begin(), examples.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 3}));

  EXPECT_THROW(BatchIterator({pairs[1], pairs[2]}, config()), Error);
}

TEST(Batcher, BucketsBySimilarLength) {
  BatchIterator it(make_pairs(300), config());
  // Sorted by length before cutting, so a batch wastes few tokens on padding.
  int64_t padded = 0, real = 0;
  for (int64_t b = 0; b < it.stats().batches_per_epoch; ++b) {
    const Batch batch = it.next();
    padded += batch.src.numel();
    real += batch.src_tokens;
  }
  EXPECT_LT(padded, real * 11 / 10);
}

TEST(Batcher, OrderIsSeededAndChangesEachEpoch) {
  const auto pairs = make_pairs(300);
  BatchIterator a(pairs, config(7)), b(pairs, config(7)), other_seed(pairs, config(8));
  const auto a0 = epoch_examples(a), a1 = epoch_examples(a);
  EXPECT_EQ(a0, epoch_examples(b));
  EXPECT_EQ(a1, epoch_examples(b));
  EXPECT_NE(a0, a1);
  EXPECT_NE(a0, epoch_examples(other_seed));
}

TEST(Batcher, RestoredPositionGivesTheSameBatches) {
  const auto pairs = make_pairs(300);
  BatchIterator original(pairs, config());
  const int64_t per_epoch = original.stats().batches_per_epoch;
  for (int64_t i = 0; i < per_epoch - 3; ++i) original.next();
  const BatchPosition saved = original.position();
  EXPECT_EQ(saved, (BatchPosition{0, per_epoch - 3}));
  std::vector<Batch> expected;
  for (int i = 0; i < 8; ++i) expected.push_back(original.next());  // crosses into epoch 1

  BatchIterator resumed(pairs, config());
  resumed.set_position(saved);
  for (const Batch& want : expected) {
    const Batch got = resumed.next();
    EXPECT_EQ(got.examples, want.examples);
    ASSERT_EQ(got.src.shape(), want.src.shape());
    ASSERT_EQ(got.labels.shape(), want.labels.shape());
    EXPECT_TRUE(std::equal(got.src.data<int64_t>(), got.src.data<int64_t>() + got.src.numel(),
                           want.src.data<int64_t>()));
    EXPECT_TRUE(std::equal(got.labels.data<int64_t>(), got.labels.data<int64_t>() + got.labels.numel(),
                           want.labels.data<int64_t>()));
  }
  EXPECT_EQ(resumed.position(), original.position());
  EXPECT_EQ(resumed.position().epoch, 1);

  resumed.set_position({2, per_epoch});  // the end of epoch 2 is the start of epoch 3
  EXPECT_EQ(resumed.position(), (BatchPosition{3, 0}));
  EXPECT_THROW(resumed.set_position({0, per_epoch + 1}), Error);
  EXPECT_THROW(resumed.set_position({-1, 0}), Error);
}

// Shards of a batch are its rows k, k + of, ... : together exactly the batch's rows, each shard read as a
// batch of its own, and the counts those of the whole batch.
TEST(Batcher, RowShardsAreDisjointAndComplete) {
  const auto pairs = make_pairs(300);
  BatchIterator whole(pairs, config()), sharded(pairs, config()), tail(pairs, config());
  for (int b = 0; b < 12; ++b) {
    const Batch all = whole.next();
    const ShardedBatch parts = sharded.next_shards({0, 3, 3});
    ASSERT_EQ(parts.shards.size(), 3u);
    std::vector<int64_t> together;
    for (int64_t k = 0; k < 3; ++k) {
      const Batch& part = parts.shards[size_t(k)];
      EXPECT_EQ(part.examples, shard_rows(all.examples, k, 3));
      if (part.examples.empty()) continue;
      const Batch want = make_batch(MemoryPairs(pairs), part.examples, config().ids);
      EXPECT_TRUE(std::equal(want.src.data<int64_t>(), want.src.data<int64_t>() + want.src.numel(),
                             part.src.data<int64_t>()));
      together.insert(together.end(), part.examples.begin(), part.examples.end());
    }
    std::sort(together.begin(), together.end());
    std::vector<int64_t> rows = all.examples;
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(together, rows);
    EXPECT_EQ(parts.src_tokens, all.src_tokens);
    EXPECT_EQ(parts.tgt_tokens, all.tgt_tokens);
    // A rank that reads only its last shard sees the same rows.
    EXPECT_EQ(tail.next_shards({2, 1, 3}).shards[0].examples, parts.shards[2].examples);
  }
  EXPECT_EQ(whole.position(), sharded.position());
  EXPECT_EQ(test::error_of([&] {
              sharded.next_shards({2, 2, 3});
            }),
            "data sharding: shards 2 to 3 are not among 3");
  // More shards than rows: the surplus shards are empty.
  const ShardedBatch wide = sharded.next_shards({0, 400, 400});
  int64_t empty = 0;
  for (const Batch& part : wide.shards) empty += part.examples.empty() ? 1 : 0;
  EXPECT_GT(empty, 0);
}

TEST(Batcher, ConfigErrors) {
  const auto pairs = make_pairs(10);
  auto bad = config();
  bad.max_tokens = 11;
  EXPECT_THROW(BatchIterator(pairs, bad), Error);
  bad = config();
  bad.ids.sos = -1;
  EXPECT_THROW(BatchIterator(pairs, bad), Error);
}

}  // namespace
}  // namespace tfm::data
