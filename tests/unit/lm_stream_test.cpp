#include "data/lm_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_support.h"
#include "tokenize/word_level.h"

namespace tfm::data {
namespace {

using tokenize::WordLevelTokenizer;

// Ids: [UNK] 0, [PAD] 1, <eot> 2, a 3, b 4, ..., z 28.
WordLevelTokenizer letters() {
  std::vector<std::string> vocab = {"[UNK]", "[PAD]", "<eot>"};
  for (char c = 'a'; c <= 'z'; ++c) vocab.push_back(std::string(1, c));
  return WordLevelTokenizer(vocab, "[UNK]", {"[UNK]", "[PAD]", "<eot>"});
}
constexpr int32_t E = 2;  // <eot>

TokenFile text_file(const std::string& text, const WordLevelTokenizer& tokenizer) {
  const std::string dir = test::temp_dir("lm");
  std::ofstream(dir + "/corpus.txt", std::ios::binary) << text;
  TokenFile::build(dir + "/corpus.tokens", {dir + "/corpus.txt", {CorpusFormat::Text}, {&tokenizer}});
  return TokenFile::open(dir + "/corpus.tokens");
}

std::vector<int64_t> row(const Tensor& t, int64_t r) {
  std::vector<int64_t> values;
  for (int64_t c = 0; c < t.size(1); ++c) values.push_back(int64_t(t.at({r, c})));
  return values;
}

TEST(LmStream, WindowsByHand) {
  const auto tok = letters();
  // The empty line is skipped: the stream is  a b c <eot> d e <eot> f <eot>  = 3 4 5 E 6 7 E 8 E.
  const TokenFile file = text_file("a b c\nd e\n\nf\n", tok);
  LmStream stream(file, {.context = 3, .batch_size = 1, .eot_id = E});
  EXPECT_EQ(stream.stream_tokens(), 9);
  // Stride 3: windows of 4 tokens start at 0 and 3; one starting at 6 would need 10 tokens.
  ASSERT_EQ(stream.windows(), 2);
  EXPECT_EQ(stream.window(0), (std::vector<int32_t>{3, 4, 5, E}));
  EXPECT_EQ(stream.window(1), (std::vector<int32_t>{E, 6, 7, E}));

  LmStream overlapping(file, {.context = 3, .stride = 2, .batch_size = 1, .eot_id = E});
  ASSERT_EQ(overlapping.windows(), 3);  // starts 0, 2, 4
  EXPECT_EQ(overlapping.window(1), (std::vector<int32_t>{5, E, 6, 7}));
  EXPECT_EQ(overlapping.window(2), (std::vector<int32_t>{6, 7, E, 8}));

  LmStream whole(file, {.context = 8, .batch_size = 1, .eot_id = E});
  ASSERT_EQ(whole.windows(), 1);
  EXPECT_EQ(whole.window(0), (std::vector<int32_t>{3, 4, 5, E, 6, 7, E, 8, E}));

  // A batch: inputs are the window's first 3 tokens, labels its last 3.
  LmStream batched(file, {.context = 3, .batch_size = 2, .eot_id = E, .seed = 5});
  ASSERT_EQ(batched.batches_per_epoch(), 1);
  const LmBatch batch = batched.next();
  ASSERT_EQ(batch.inputs.shape(), Shape({2, 3}));
  for (int64_t r = 0; r < 2; ++r) {
    const std::vector<int32_t> w = batched.window(batch.windows[size_t(r)]);
    EXPECT_EQ(row(batch.inputs, r), (std::vector<int64_t>{w[0], w[1], w[2]}));
    EXPECT_EQ(row(batch.labels, r), (std::vector<int64_t>{w[1], w[2], w[3]}));
  }
  EXPECT_EQ(batched.position(), (BatchPosition{1, 0}));
}

TEST(LmStream, Errors) {
  const auto tok = letters();
  const TokenFile file = text_file("a b c\n", tok);  // 4 stream tokens
  EXPECT_NE(test::error_of([&] {
              LmStream(file, {.context = 4, .batch_size = 1, .eot_id = E});
            }).find("4 tokens make 0 windows of 5 tokens"),
            std::string::npos);
  EXPECT_EQ(test::error_of([&] { LmStream(file, {.context = 2, .batch_size = 1, .eot_id = 29}); }),
            "lm stream: end-of-text id 29 is outside the vocabulary of 29");
  EXPECT_EQ(test::error_of([&] { LmStream(file, {.context = 0, .batch_size = 1, .eot_id = E}); }),
            "lm stream: context 0 is below 1");
}

// 400 lines of 1 to 7 one-letter words.
std::string many_lines() {
  std::string text;
  for (int i = 0; i < 400; ++i) {
    for (int k = 0; k < 1 + i % 7; ++k) {
      text.push_back(char('a' + (i + k) % 26));
      text.push_back(k == i % 7 ? '\n' : ' ');
    }
  }
  return text;
}

std::vector<std::vector<int64_t>> epoch(LmStream& stream) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b = 0; b < stream.batches_per_epoch(); ++b) batches.push_back(stream.next().windows);
  return batches;
}

TEST(LmStream, WindowsFollowTheLines) {
  const auto tok = letters();
  const std::string text = many_lines();
  const TokenFile file = text_file(text, tok);
  std::vector<int32_t> expected;  // the stream, built from the text directly
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = text.find('\n', begin);
    for (int32_t id : tok.encode(text.substr(begin, end - begin))) expected.push_back(id);
    expected.push_back(E);
    begin = end + 1;
  }
  LmStream stream(file, {.context = 10, .batch_size = 4, .eot_id = E});
  ASSERT_EQ(stream.stream_tokens(), int64_t(expected.size()));
  ASSERT_EQ(stream.windows(), (int64_t(expected.size()) - 11) / 10 + 1);
  for (int64_t w = 0; w < stream.windows(); ++w)
    ASSERT_EQ(stream.window(w),
              std::vector<int32_t>(expected.begin() + w * 10, expected.begin() + w * 10 + 11))
        << "window " << w;
}

TEST(LmStream, ShuffledPerEpochReproducibleResumableAndSharded) {
  const auto tok = letters();
  const TokenFile file = text_file(many_lines(), tok);
  const LmConfig c{.context = 10, .batch_size = 4, .eot_id = E, .seed = 3};
  LmStream a(file, c), b(file, c);
  const int64_t per_epoch = a.windows() / 4;
  ASSERT_EQ(a.batches_per_epoch(), per_epoch);
  const auto a0 = epoch(a), a1 = epoch(a);
  EXPECT_EQ(a0, epoch(b));
  EXPECT_NE(a0, a1);
  // Each epoch: distinct windows, all but the windows() % 4 left over.
  for (const auto& e : {a0, a1}) {
    std::vector<int64_t> seen;
    for (const auto& batch : e) seen.insert(seen.end(), batch.begin(), batch.end());
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
    EXPECT_EQ(int64_t(seen.size()), per_epoch * 4);
  }

  LmStream resumed(file, c);
  resumed.set_position({1, 5});
  EXPECT_EQ(resumed.next().windows, a1[5]);

  // Shards of epoch 1's batches: rows k, k + 3, ... of each, with the rows' tokens.
  LmStream whole(file, c), sharded(file, c);
  whole.set_position({1, 0});
  sharded.set_position({1, 0});
  for (int64_t b = 0; b < per_epoch; ++b) {
    const LmBatch all = whole.next();
    const std::vector<LmBatch> parts = sharded.next_shards({0, 3, 3});
    for (int64_t k = 0; k < 3; ++k) {
      const LmBatch& part = parts[size_t(k)];
      ASSERT_EQ(part.windows, shard_rows(all.windows, k, 3));
      for (size_t row = 0; row < part.windows.size(); ++row) {
        const size_t whole_row = size_t(k) + 3 * row;
        EXPECT_TRUE(std::equal(part.inputs.data<int64_t>() + row * c.context,
                               part.inputs.data<int64_t>() + (row + 1) * c.context,
                               all.inputs.data<int64_t>() + whole_row * c.context));
      }
    }
  }
}

}  // namespace
}  // namespace tfm::data
