#include "data/token_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "test_support.h"
#include "tokenize/word_level.h"

namespace tfm::data {
namespace {

namespace fs = std::filesystem;
using tokenize::WordLevelTokenizer;

const std::vector<std::string> kSpecials = {"[UNK]", "[PAD]", "[SOS]", "[EOS]"};

WordLevelTokenizer tokenizer(std::vector<std::string> words) {
  std::vector<std::string> vocab = kSpecials;
  vocab.insert(vocab.end(), words.begin(), words.end());
  return WordLevelTokenizer(vocab, "[UNK]", kSpecials);
}

std::string write(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// A TSV corpus with an empty line (3) and an empty side (5).
const std::string kTsv =
    "the cat sat\tel gato\nthe dog\tel perro se sienta\n\nsat sat\tse\n\tel\nan unknown word\tgato gato "
    "gato\n";

struct Fixture {
  std::string dir = test::temp_dir("token-file");
  std::string corpus = write(dir + "/corpus.tsv", kTsv);
  std::string cache = dir + "/corpus.tokens";
  WordLevelTokenizer en = tokenizer({"the", "cat", "sat", "dog"});
  WordLevelTokenizer es = tokenizer({"el", "gato", "perro", "se"});
  TokenFileSpec spec() const { return {corpus, {}, {&en, &es}, 2}; }
};

TEST(TokenFile, IdsEqualDirectEncoding) {
  Fixture f;
  TokenFile::build(f.cache, f.spec());
  const TokenFile file = TokenFile::open(f.cache);
  CorpusStats stats;
  const auto pairs = read_parallel_tsv(f.corpus, &stats);
  ASSERT_EQ(file.records(), 4);
  ASSERT_EQ(file.streams(), 2);
  EXPECT_EQ(file.id_bytes(), 2);
  EXPECT_EQ(file.info().stats, stats);
  EXPECT_EQ(file.info().stats.skipped_empty_line, 1);
  EXPECT_EQ(file.info().stats.skipped_empty_side, 1);
  int64_t tokens = 0;
  for (int64_t r = 0; r < file.records(); ++r) {
    EXPECT_EQ(file.line(r), pairs[size_t(r)].line);
    EXPECT_EQ(file.ids(r, 0).to_vector(), f.en.encode(pairs[size_t(r)].src)) << "record " << r;
    EXPECT_EQ(file.ids(r, 1).to_vector(), f.es.encode(pairs[size_t(r)].tgt)) << "record " << r;
    tokens += file.ids(r, 0).size() + file.ids(r, 1).size();
  }
  EXPECT_EQ(file.tokens(), tokens);
  EXPECT_EQ(file.line(3), 6);
  // By hand: "an unknown word" is three unknown words; "gato gato gato" is id 5 three times.
  EXPECT_EQ(file.ids(3, 0).to_vector(), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(file.ids(3, 1).to_vector(), (std::vector<int32_t>{5, 5, 5}));
  EXPECT_EQ(file.info().tokenizers[1].hash, f.es.hash());
}

TEST(TokenFile, ShippedCorpusMatchesEncodePairs) {
  const std::string corpus = std::string(TFM_SOURCE_DIR) + "/data/bible-en-es/valid.tsv.gz";
  const auto pairs = read_parallel_tsv(corpus);
  std::vector<std::string> english, spanish;
  for (const auto& p : pairs) {
    english.push_back(p.src);
    spanish.push_back(p.tgt);
  }
  const auto en = WordLevelTokenizer::train(english, {}), es = WordLevelTokenizer::train(spanish, {});
  const std::string cache = test::temp_dir("token-file-shipped") + "/valid.tokens";
  TokenFile::build(cache, {corpus, {}, {&en, &es}, 100});  // several chunks
  const TokenFile file = TokenFile::open(cache);
  const std::vector<TokenPair> want = encode_pairs(pairs, en, es);
  ASSERT_EQ(file.records(), int64_t(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(file.ids(int64_t(i), 0).to_vector(), want[i].src) << "pair " << i;
    ASSERT_EQ(file.ids(int64_t(i), 1).to_vector(), want[i].tgt) << "pair " << i;
  }

  // Batches drawn from the mapped file are those drawn from the pairs in memory.
  const BatchConfig config{.ids = {.pad = es.pad_id(), .sos = es.bos_id(), .eos = es.eos_id()},
                           .max_len = 60,
                           .max_tokens = 1200,
                           .seed = 4};
  BatchIterator mapped(file.pairs(), config), in_memory(want, config);
  ASSERT_EQ(mapped.stats().batches_per_epoch, in_memory.stats().batches_per_epoch);
  for (int64_t b = 0; b < 2 * mapped.stats().batches_per_epoch; ++b) {
    const Batch got = mapped.next(), expected = in_memory.next();
    ASSERT_EQ(got.examples, expected.examples);
    ASSERT_EQ(got.src.shape(), expected.src.shape());
    ASSERT_EQ(got.labels.shape(), expected.labels.shape());
    EXPECT_TRUE(std::equal(got.src.data<int64_t>(), got.src.data<int64_t>() + got.src.numel(),
                           expected.src.data<int64_t>()));
    EXPECT_TRUE(std::equal(got.labels.data<int64_t>(), got.labels.data<int64_t>() + got.labels.numel(),
                           expected.labels.data<int64_t>()));
  }
}

// A tokenizer of 70000 tokens whose text is the ids in decimal ("5 69999"): the word-level tokenizer of
// that size is slow to serialise (and so to hash).
class DecimalTokenizer final : public tokenize::Tokenizer {
 public:
  std::string_view kind() const override { return "Decimal"; }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    std::istringstream in{std::string(text)};
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
  }
  std::string decode(std::span<const int32_t>, bool) const override { return ""; }
  int32_t vocab_size() const override { return 70000; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::optional<std::string> id_to_token(int32_t) const override { return std::nullopt; }
  tokenize::SpecialIds special_ids() const override { return {}; }
  std::string to_json() const override { return "{\"model\": {\"type\": \"Decimal\"}}"; }
};

TEST(TokenFile, WideIdsWhenTheVocabularyPasses65536) {
  const DecimalTokenizer big;
  const std::string dir = test::temp_dir("token-file-wide");
  // A text corpus: tabs are part of the line.
  const std::string corpus = write(dir + "/text.txt", "0 69999\t65535 65536\n7\n");
  TokenFile::build(dir + "/text.tokens", {corpus, {CorpusFormat::Text}, {&big}});
  const TokenFile file = TokenFile::open(dir + "/text.tokens");
  EXPECT_EQ(file.id_bytes(), 4);
  EXPECT_EQ(file.streams(), 1);
  EXPECT_EQ(file.sequence(0).to_vector(), (std::vector<int32_t>{0, 69999, 65535, 65536}));
  EXPECT_EQ(file.sequence(1).to_vector(), (std::vector<int32_t>{7}));
}

TEST(TokenFile, ReusedUntilCorpusOrTokenizerChanges) {
  Fixture f;
  CacheOutcome outcome;
  TokenFile::open_or_build(f.cache, f.spec(), &outcome);
  EXPECT_TRUE(outcome.built);
  EXPECT_EQ(outcome.reason, "absent");

  TokenFile::open_or_build(f.cache, f.spec(), &outcome);
  EXPECT_FALSE(outcome.built) << outcome.reason;

  // Another target tokenizer: ids change, so the file is rebuilt.
  const WordLevelTokenizer es2 = tokenizer({"gato", "el", "perro", "se"});
  TokenFileSpec other = f.spec();
  other.tokenizers[1] = &es2;
  TokenFile rebuilt = TokenFile::open_or_build(f.cache, other, &outcome);
  EXPECT_TRUE(outcome.built);
  EXPECT_NE(outcome.reason.find("stale: tokenizer 1 changed"), std::string::npos) << outcome.reason;
  EXPECT_EQ(rebuilt.ids(0, 1).to_vector(), es2.encode("el gato"));
  TokenFile::open_or_build(f.cache, other, &outcome);
  EXPECT_FALSE(outcome.built);

  // Touching the corpus (same bytes, new modification time) makes the file stale.
  fs::last_write_time(f.corpus, fs::last_write_time(f.corpus) + std::chrono::seconds(1));
  TokenFile::open_or_build(f.cache, other, &outcome);
  EXPECT_TRUE(outcome.built);
  EXPECT_NE(outcome.reason.find("corpus.tsv changed"), std::string::npos) << outcome.reason;

  // New content: the new ids are read.
  write(f.corpus, "dog dog\tperro\n");
  TokenFile changed = TokenFile::open_or_build(f.cache, other, &outcome);
  EXPECT_TRUE(outcome.built);
  ASSERT_EQ(changed.records(), 1);
  EXPECT_EQ(changed.ids(0, 0).to_vector(), (std::vector<int32_t>{7, 7}));

  // Other options.
  other.options.utf8 = Utf8Policy::Skip;
  TokenFile::open_or_build(f.cache, other, &outcome);
  EXPECT_EQ(outcome.reason, "stale: the corpus options differ");
}

TEST(TokenFile, TruncatedFileIsAnErrorOrRebuilt) {
  Fixture f;
  TokenFile::build(f.cache, f.spec());
  const std::string whole = io::read_file(f.cache);
  const std::string cut = f.dir + "/cut.tokens";
  for (size_t size = 0; size < whole.size(); ++size) {
    write(cut, whole.substr(0, size));
    const std::string error = test::error_of([&] { TokenFile::open(cut); });
    EXPECT_TRUE(error.starts_with(cut + ": ")) << size << " bytes: " << error;
  }
  write(cut, whole.substr(0, whole.size() / 2));
  EXPECT_EQ(test::error_of([&] { TokenFile::open(cut); }),
            cut + ": truncated or corrupt: " + std::to_string(whole.size() / 2) +
                " bytes, but its header describes 20 ids in 4 records and " + std::to_string(whole.size()) +
                " bytes");
  CacheOutcome outcome;
  const TokenFile rebuilt = TokenFile::open_or_build(cut, f.spec(), &outcome);
  EXPECT_TRUE(outcome.reason.starts_with("unreadable: " + cut + ": truncated")) << outcome.reason;
  EXPECT_EQ(io::read_file(cut), whole);
}

TEST(TokenFile, EveryCorruptByteIsDetected) {
  Fixture f;
  TokenFile::build(f.cache, f.spec());
  const std::string whole = io::read_file(f.cache);
  const std::string bad = f.dir + "/bad.tokens";
  for (size_t at = 0; at < whole.size(); ++at) {
    std::string corrupt = whole;
    corrupt[at] = char(corrupt[at] ^ 0x10);
    write(bad, corrupt);
    const std::string error = test::error_of([&] { TokenFile::open(bad); });
    EXPECT_TRUE(error.starts_with(bad + ": ")) << "byte " << at << ": " << error;
  }
  std::string foreign = whole;
  foreign[0] = 'X';
  write(bad, foreign);
  EXPECT_EQ(test::error_of([&] { TokenFile::open(bad); }), bad + ": not a tfm token file (bad magic)");
}

TEST(TokenFile, BadCorpusNamesTheLineAndWritesNothing) {
  Fixture f;
  write(f.corpus, "the cat\tel gato\nno tab\n");
  EXPECT_EQ(test::error_of([&] { TokenFile::build(f.cache, f.spec()); }),
            f.corpus + ":2: no tab between source and target");
  EXPECT_FALSE(fs::exists(f.cache));
  EXPECT_EQ(fs::directory_iterator(f.dir)->path(), f.corpus);  // no temporary file left either
  EXPECT_EQ(test::error_of([&] {
              TokenFile::build(f.cache, {f.corpus, {}, {&f.en}});
            }),
            "a parallel_tsv token file needs 2 tokenizer(s), got 1");
}

TEST(TokenFile, Utf8PolicyReachesTheIds) {
  Fixture f;
  // Line 2's source has an invalid byte at offset 4.
  write(f.corpus, "the cat\tel gato\nthe \xFF dog\tel perro\n");
  EXPECT_EQ(test::error_of([&] { TokenFile::build(f.cache, f.spec()); }),
            f.corpus + ":2: invalid UTF-8 at byte offset 4");
  TokenFileSpec replace = f.spec();
  replace.options.utf8 = Utf8Policy::Replace;
  TokenFile::build(f.cache, replace);
  const TokenFile replaced = TokenFile::open(f.cache);
  EXPECT_EQ(replaced.ids(1, 0).to_vector(), f.en.encode("the \xEF\xBF\xBD dog"));
  EXPECT_EQ(replaced.info().stats.replaced_invalid_utf8, 1);
  TokenFileSpec skip = f.spec();
  skip.options.utf8 = Utf8Policy::Skip;
  TokenFile::build(f.cache, skip);
  const TokenFile skipped = TokenFile::open(f.cache);
  EXPECT_EQ(skipped.records(), 1);
  EXPECT_EQ(skipped.info().stats.skipped_invalid_utf8, 1);
}

}  // namespace
}  // namespace tfm::data
