#include "data/line_reader.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_support.h"

namespace tfm::data {
namespace {

std::string write_file(const std::string& name, const std::string& contents) {
  std::string path = test::temp_dir("line-reader") + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

std::string write_gzip(const std::string& name, const std::string& contents) {
  std::string path = test::temp_dir("line-reader") + "/" + name;
  gzFile file = gzopen(path.c_str(), "wb9");
  EXPECT_NE(file, nullptr);
  EXPECT_EQ(gzwrite(file, contents.data(), unsigned(contents.size())), int(contents.size()));
  EXPECT_EQ(gzclose(file), Z_OK);
  return path;
}

std::vector<std::string> read_all(const std::string& path) {
  LineReader reader(path);
  std::vector<std::string> lines;
  std::string line;
  while (reader.next(line)) {
    lines.push_back(line);
    EXPECT_EQ(reader.line_number(), int64_t(lines.size()));
  }
  return lines;
}

std::string read_error(const std::string& path) {
  try {
    read_all(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

using Lines = std::vector<std::string>;

TEST(LineReader, PlainFile) {
  EXPECT_EQ(read_all(write_file("a.txt", "one\ntwo\n\nfour\n")), (Lines{"one", "two", "", "four"}));
}

TEST(LineReader, LastLineWithoutNewline) {
  EXPECT_EQ(read_all(write_file("a.txt", "one\ntwo")), (Lines{"one", "two"}));
}

TEST(LineReader, EmptyFileHasNoLines) { EXPECT_EQ(read_all(write_file("a.txt", "")), Lines{}); }

TEST(LineReader, CrlfLinesLoseTheCr) {
  EXPECT_EQ(read_all(write_file("a.txt", "one\r\ntwo\r\n\r\nthree\r")), (Lines{"one", "two", "", "three"}));
  // Only one trailing CR goes; a CR elsewhere stays.
  EXPECT_EQ(read_all(write_file("b.txt", "a\rb\r\r\n")), (Lines{"a\rb\r"}));
}

TEST(LineReader, GzipFile) {
  EXPECT_EQ(read_all(write_gzip("a.txt.gz", "uno\r\ndos\ntres")), (Lines{"uno", "dos", "tres"}));
}

TEST(LineReader, LongLinesAcrossChunks) {
  const std::string long_line(700000, 'x');
  const std::string text = long_line + "\n" + "short\n" + long_line;
  EXPECT_EQ(read_all(write_file("long.txt", text)), (Lines{long_line, "short", long_line}));
  EXPECT_EQ(read_all(write_gzip("long.txt.gz", text)), (Lines{long_line, "short", long_line}));
}

TEST(LineReader, MissingFileNamesThePath) {
  const std::string path = test::temp_dir("line-reader") + "/missing.txt";
  std::string message = read_error(path);
  EXPECT_NE(message.find("cannot open " + path), std::string::npos) << message;
}

TEST(LineReader, GzNameWithoutGzipDataFails) {
  const std::string path = write_file("plain.txt.gz", "not compressed\n");
  EXPECT_EQ(read_error(path), path + ": not gzip data");
}

TEST(LineReader, CorruptGzipFails) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + "\n";
  std::string gz_path = write_gzip("good.txt.gz", text);
  std::ifstream in(gz_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::string corrupt = bytes;
  for (size_t i = corrupt.size() / 2; i < corrupt.size() / 2 + 64; ++i) corrupt[i] = char(~corrupt[i]);
  const std::string corrupt_path = write_file("corrupt.txt.gz", corrupt);
  std::string message = read_error(corrupt_path);
  EXPECT_EQ(message.rfind(corrupt_path + ": read error after line", 0), 0u) << message;

  const std::string truncated_path = write_file("truncated.txt.gz", bytes.substr(0, bytes.size() - 100));
  message = read_error(truncated_path);
  EXPECT_EQ(message.rfind(truncated_path + ": read error after line", 0), 0u) << message;
}

}  // namespace
}  // namespace tfm::data
