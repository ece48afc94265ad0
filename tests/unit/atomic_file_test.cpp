#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_support.h"

namespace tfm::io {
namespace {

using test::error_of;

namespace fs = std::filesystem;

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

TEST(AtomicFile, CommitReplacesContentAndLeavesNoTemporary) {
  std::string dir = test::temp_dir("atomic");
  std::string path = dir + "/out.txt";
  write_file_atomic(path, "first");
  EXPECT_EQ(read_file(path), "first");
  write_file_atomic(path, "second, longer");
  EXPECT_EQ(read_file(path), "second, longer");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"out.txt"});
}

TEST(AtomicFile, LargeContentInPieces) {
  std::string dir = test::temp_dir("atomic");
  std::string path = dir + "/big.bin";
  std::string chunk(1 << 20, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = char(i * 131 % 251);
  {
    AtomicFileWriter w(path);
    for (int i = 0; i < 5; ++i) w.write(chunk);
    w.write("tail");
    w.commit();
  }
  std::string got = read_file(path);
  ASSERT_EQ(got.size(), 5 * chunk.size() + 4);
  EXPECT_EQ(got.substr(3 * chunk.size(), chunk.size()), chunk);
  EXPECT_EQ(got.substr(got.size() - 4), "tail");
}

TEST(AtomicFile, UncommittedWriterKeepsPreviousFile) {
  std::string dir = test::temp_dir("atomic");
  std::string path = dir + "/keep.txt";
  write_file_atomic(path, "previous");
  {
    AtomicFileWriter w(path);
    w.write("half-written replacement");
  }
  EXPECT_EQ(read_file(path), "previous");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"keep.txt"});
}

TEST(AtomicFile, ExceptionMidWriteKeepsPreviousFile) {
  std::string dir = test::temp_dir("atomic");
  std::string path = dir + "/keep.txt";
  write_file_atomic(path, "previous");
  try {
    AtomicFileWriter w(path);
    w.write("partial");
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(read_file(path), "previous");
  EXPECT_EQ(entries(dir), std::vector<std::string>{"keep.txt"});
}

TEST(AtomicFile, MissingFolderThrowsNamingPath) {
  std::string path = test::temp_dir("atomic") + "/no/such/folder/out.txt";
  std::string msg = error_of([&] { write_file_atomic(path, "x"); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
}

TEST(AtomicFile, ReadOnlyFolderThrowsNamingPath) {
  std::string dir = test::temp_dir("atomic");
  ASSERT_EQ(::chmod(dir.c_str(), 0555), 0);
  if (::access(dir.c_str(), W_OK) == 0) {  // root ignores permissions
    ::chmod(dir.c_str(), 0755);
    GTEST_SKIP() << "running with permission to write into read-only folders";
  }
  std::string path = dir + "/out.txt";
  std::string msg = error_of([&] { write_file_atomic(path, "x"); });
  ::chmod(dir.c_str(), 0755);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
}

TEST(AtomicFile, FailedRenameRemovesTemporary) {
  std::string dir = test::temp_dir("atomic");
  std::string path = dir + "/target";
  fs::create_directory(path);
  fs::create_directory(path + "/inside");  // a non-empty folder cannot be replaced by a file
  std::string msg = error_of([&] { write_file_atomic(path, "x"); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("renaming"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_directory(path + "/inside"));
  EXPECT_EQ(entries(dir), std::vector<std::string>{"target"});
}

TEST(AtomicFile, ReadMissingFileThrowsNamingPath) {
  std::string path = test::temp_dir("atomic") + "/absent.txt";
  std::string msg = error_of([&] { read_file(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tfm::io
