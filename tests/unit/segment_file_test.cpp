// Reading segments from plain, gzip and TSV files, with errors that name the file and line.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "metrics/segment_file.h"
#include "test_support.h"

namespace tfm::metrics {
namespace {

TEST(SegmentFile, PlainLinesAndTsvColumns) {
  const std::string dir = test::temp_dir("segments");
  std::ofstream(dir + "/plain.txt") << "one\r\n\ntwo three";
  EXPECT_EQ(read_segments(dir + "/plain.txt"), (std::vector<std::string>{"one", "", "two three"}));
  std::ofstream(dir + "/pairs.tsv") << "a\tb\tc\nd\t\tf\n";
  EXPECT_EQ(read_segments(dir + "/pairs.tsv", 2), (std::vector<std::string>{"b", ""}));
  EXPECT_EQ(read_segments(dir + "/pairs.tsv", 3), (std::vector<std::string>{"c", "f"}));
  EXPECT_EQ(read_segments(dir + "/pairs.tsv", 1), (std::vector<std::string>{"a", "d"}));
}

TEST(SegmentFile, Gzip) {
  const std::string path = test::temp_dir("segments-gz") + "/refs.tsv.gz";
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "src\tdst one\nsrc\tdst two\n";
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
  EXPECT_EQ(read_segments(path, 2), (std::vector<std::string>{"dst one", "dst two"}));
}

TEST(SegmentFile, ErrorsNameFileAndLine) {
  const std::string dir = test::temp_dir("segments-bad");
  std::ofstream(dir + "/short.tsv") << "a\tb\nonly one\n";
  EXPECT_EQ(test::error_of([&] { read_segments(dir + "/short.tsv", 2); }),
            dir + "/short.tsv:2: no column 2 (the line has 1 tab-separated fields)");
  std::ofstream(dir + "/bad.txt") << "fine\nab\xff\n";
  EXPECT_EQ(test::error_of([&] { read_segments(dir + "/bad.txt"); }),
            dir + "/bad.txt:2: invalid UTF-8 at byte offset 2");
  EXPECT_NE(test::error_of([&] { read_segments(dir + "/missing.txt"); }).find("missing.txt"),
            std::string::npos);
}

}  // namespace
}  // namespace tfm::metrics
