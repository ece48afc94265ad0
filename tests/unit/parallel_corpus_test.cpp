#include "data/parallel_corpus.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "test_support.h"

namespace tfm::data {
namespace {

std::string write_file(const std::string& contents) {
  std::string path = test::temp_dir("corpus") + "/corpus.tsv";
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// The error that reading `contents` gives, with the file's path written as "PATH".
std::string read_error(const std::string& contents) {
  const std::string path = write_file(contents);
  try {
    read_parallel_tsv(path);
  } catch (const Error& e) {
    std::string message = e.what();
    if (message.starts_with(path)) message.replace(0, path.size(), "PATH");
    return message;
  }
  return "no error";
}

TEST(ParallelCorpus, ReadsPairsWithLineNumbers) {
  CorpusStats stats;
  auto pairs =
      read_parallel_tsv(write_file("Hello.\tHola.\r\n\nIn the beginning\tEn el principio\n"), &stats);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].src, "Hello.");
  EXPECT_EQ(pairs[0].tgt, "Hola.");
  EXPECT_EQ(pairs[0].line, 1);
  EXPECT_EQ(pairs[1].src, "In the beginning");
  EXPECT_EQ(pairs[1].tgt, "En el principio");
  EXPECT_EQ(pairs[1].line, 3);
  EXPECT_EQ(stats.lines, 3);
  EXPECT_EQ(stats.records, 2);
  EXPECT_EQ(stats.skipped_empty_line, 1);
  EXPECT_EQ(stats.skipped_empty_side, 0);
}

TEST(ParallelCorpus, SkipsAndCountsEmptySides) {
  CorpusStats stats;
  auto pairs = read_parallel_tsv(write_file("a\tb\n\tonly target\nonly source\t\n\t\n\n"), &stats);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(stats.lines, 5);
  EXPECT_EQ(stats.records, 1);
  EXPECT_EQ(stats.skipped_empty_side, 3);
  EXPECT_EQ(stats.skipped_empty_line, 1);
}

TEST(ParallelCorpus, LineWithoutTabFails) {
  EXPECT_EQ(read_error("a\tb\nno tab here\n"), "PATH:2: no tab between source and target");
}

TEST(ParallelCorpus, LineWithTwoTabsFails) {
  EXPECT_EQ(read_error("a\tb\nc\td\n\ne\tf\tg\n"), "PATH:4: more than one tab (expected source<TAB>target)");
}

TEST(ParallelCorpus, NoPairsFails) {
  EXPECT_EQ(read_error(""), "PATH: no sentence pairs");
  EXPECT_EQ(read_error("\n\n\tx\n"), "PATH: no sentence pairs");
}

TEST(ParallelCorpus, InvalidUtf8NamesLineAndOffset) {
  // Line 2: "ni\xC3" starts a two-byte sequence that "o" does not continue, at byte offset 8.
  EXPECT_EQ(read_error("ok\tbien\nchild\tni\xC3o\n"), "PATH:2: invalid UTF-8 at byte offset 8");
  // Overlong encodings and surrogates are invalid too.
  EXPECT_EQ(read_error("a\t\xC0\xAF\n"), "PATH:1: invalid UTF-8 at byte offset 2");
  EXPECT_EQ(read_error("\xED\xA0\x80\tb\n"), "PATH:1: invalid UTF-8 at byte offset 0");
}

// Every usable line of `contents` read under `options`, joined as "line:src|tgt;".
std::string read_all(const std::string& contents, CorpusOptions options, CorpusStats* stats) {
  CorpusReader reader(write_file(contents), options);
  std::string out;
  SentencePair record;
  while (reader.next(record)) out += std::to_string(record.line) + ":" + record.src + "|" + record.tgt + ";";
  *stats = reader.stats();
  return out;
}

TEST(ParallelCorpus, Utf8ReplacePolicy) {
  CorpusStats stats;
  // Maximal subparts, as Python's bytes.decode("utf-8", "replace") gives them: a truncated three-byte
  // sequence is one U+FFFD; an overlong C0 AF and a surrogate ED A0 80 are one per byte.
  EXPECT_EQ(read_all("ok\tbien\na\xE2\x82z\t\xC0\xAF\n\xED\xA0\x80\tb\n",
                     {CorpusFormat::ParallelTsv, Utf8Policy::Replace}, &stats),
            "1:ok|bien;2:a\uFFFDz|\uFFFD\uFFFD;3:\uFFFD\uFFFD\uFFFD|b;");
  EXPECT_EQ(stats.replaced_invalid_utf8, 6);
  EXPECT_EQ(stats.records, 3);
  EXPECT_EQ(stats.skipped(), 0);
}

TEST(ParallelCorpus, Utf8SkipPolicy) {
  CorpusStats stats;
  EXPECT_EQ(
      read_all("ok\tbien\nchild\tni\xC3o\n\nx\ty\n", {CorpusFormat::ParallelTsv, Utf8Policy::Skip}, &stats),
      "1:ok|bien;4:x|y;");
  EXPECT_EQ(stats.skipped_invalid_utf8, 1);
  EXPECT_EQ(stats.skipped_empty_line, 1);
  EXPECT_EQ(stats.lines, 4);
  // A file whose every line is skipped has no pair.
  const std::string path = write_file("\xFF\tx\n");
  EXPECT_EQ(test::error_of([&] { read_parallel_tsv(path, nullptr, Utf8Policy::Skip); }),
            path + ": no sentence pairs");
}

TEST(ParallelCorpus, TextColumnReadsOneField) {
  CorpusStats stats;
  EXPECT_EQ(read_all("a1\tb1\tc1\n\ta2\tb2\na3\tb3\n", {CorpusFormat::Text, Utf8Policy::Error, 2}, &stats),
            "1:b1|;2:a2|;3:b3|;");
  EXPECT_EQ(read_all("a1\tb1\tc1\n\tx\nlast\ty\n", {CorpusFormat::Text, Utf8Policy::Error, 1}, &stats),
            "1:a1|;3:last|;");
  EXPECT_EQ(stats.skipped_empty_side, 1);
  EXPECT_EQ(read_all("a\tb\tc\n", {CorpusFormat::Text, Utf8Policy::Error, 3}, &stats), "1:c|;");
  const std::string path = write_file("a\tb\nonly one\n");
  EXPECT_EQ(test::error_of([&] {
              CorpusReader reader(path, {CorpusFormat::Text, Utf8Policy::Error, 2});
              SentencePair record;
              while (reader.next(record)) {
              }
            }),
            path + ":2: no tab-separated field 2 (the line has 1)");
}

TEST(ParallelCorpus, TextLinesKeepTabs) {
  CorpusStats stats;
  EXPECT_EQ(read_all("one\ttwo\tthree\n\r\nlast", {CorpusFormat::Text}, &stats),
            "1:one\ttwo\tthree|;3:last|;");
  EXPECT_EQ(stats.records, 2);
  EXPECT_EQ(stats.skipped_empty_line, 1);
  const std::string path = write_file("\n\n");
  EXPECT_EQ(test::error_of([&] {
              CorpusReader reader(path, {CorpusFormat::Text});
              SentencePair record;
              reader.next(record);
            }),
            path + ": no non-empty lines");
  const std::string bad = write_file("fine\nbad \xC3\x28\n");
  EXPECT_EQ(test::error_of([&] {
              CorpusReader reader(bad, {CorpusFormat::Text});
              SentencePair record;
              while (reader.next(record)) {
              }
            }),
            bad + ":2: invalid UTF-8 at byte offset 4");
}

// The corpus shipped in data/ decompresses to exactly the shared one.
class ShippedCorpus : public ::testing::TestWithParam<std::pair<const char*, int64_t>> {};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string gunzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) return "";
  std::string out;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) out.append(buffer, size_t(n));
  gzclose(file);
  return out;
}

TEST_P(ShippedCorpus, MatchesSharedData) {
  const auto [name, expected_pairs] = GetParam();
  const std::string shipped = std::string(TFM_SOURCE_DIR) + "/data/bible-en-es/" + name + ".tsv.gz";
  const std::string shared = test::shared_dir() + "/data/bible-en-es/" + name + ".tsv";

  CorpusStats stats;
  auto pairs = read_parallel_tsv(shipped, &stats);
  EXPECT_EQ(int64_t(pairs.size()), expected_pairs);
  EXPECT_EQ(stats.lines, expected_pairs);
  EXPECT_EQ(stats.skipped_empty_line + stats.skipped_empty_side, 0);

  if (!std::filesystem::exists(shared)) GTEST_SKIP() << shared << " is not here";
  const std::string want = read_bytes(shared);
  const std::string got = gunzip(shipped);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << shipped << " does not decompress to " << shared;
}

INSTANTIATE_TEST_SUITE_P(BibleEnEs, ShippedCorpus,
                         ::testing::Values(std::pair<const char*, int64_t>{"train", 29594},
                                           std::pair<const char*, int64_t>{"valid", 616},
                                           std::pair<const char*, int64_t>{"test", 617}),
                         [](const auto& info) { return std::string(info.param.first); });

}  // namespace
}  // namespace tfm::data
