// The seed's data pipeline end to end on the shipped corpus: read, train both tokenizers, encode, batch.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/parallel_corpus.h"
#include "tokenize/word_level.h"

namespace tfm::data {
namespace {

using tokenize::WordLevelTokenizer;

TEST(SeedDataPipeline, BibleEnEs) {
  const std::string dir = std::string(TFM_SOURCE_DIR) + "/data/bible-en-es/";
  const auto train = read_parallel_tsv(dir + "train.tsv.gz");
  const auto valid = read_parallel_tsv(dir + "valid.tsv.gz");
  std::vector<std::string> english, spanish;
  for (const auto& pair : train) {
    english.push_back(pair.src);
    spanish.push_back(pair.tgt);
  }
  const auto en = WordLevelTokenizer::train(english, {});
  const auto es = WordLevelTokenizer::train(spanish, {});
  EXPECT_GT(en.vocab_size(), 5000);
  EXPECT_GT(es.vocab_size(), en.vocab_size());  // Spanish inflects more
  EXPECT_LE(es.vocab_size(), 30000);
  EXPECT_EQ(*en.id_to_token(4), ",");  // the most frequent word piece
  EXPECT_EQ(en.decode(en.encode("In the beginning, God created the heavens and the earth.")),
            "In the beginning , God created the heavens and the earth .");

  // Unknown words in held-out text are rare.
  int64_t words = 0, unknown = 0;
  for (const auto& pair : valid)
    for (int32_t id : es.encode(pair.tgt)) {
      ++words;
      unknown += id == es.unk_id();
    }
  EXPECT_LT(unknown * 20, words);  // about 3% here

  const FrameIds ids{.pad = es.pad_id(), .sos = es.bos_id(), .eos = es.eos_id()};
  EXPECT_EQ(en.pad_id(), ids.pad);
  BatchIterator batches(encode_pairs(train, en, es),
                        {.ids = ids, .max_len = 160, .max_tokens = 8192, .seed = 1});
  EXPECT_EQ(batches.stats().pairs, 29594);
  EXPECT_LT(batches.stats().skipped_too_long, 20);
  int64_t rows = 0;
  for (int64_t b = 0; b < batches.stats().batches_per_epoch; ++b) {
    const Batch batch = batches.next();
    EXPECT_LE(batch.src.size(0) * std::max(batch.src.size(1), batch.tgt_in.size(1)), 8192);
    rows += batch.src.size(0);
  }
  EXPECT_EQ(rows, batches.stats().pairs - batches.stats().skipped_too_long);
}

}  // namespace
}  // namespace tfm::data
