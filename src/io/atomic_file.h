// Files that appear whole or not at all: written to "<path>.tmp.<pid>", fsynced, renamed over
// <path>, and the folder fsynced. If anything fails (full disk, a signal, an exception), the
// temporary file is removed and whatever was at <path> before is left intact.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tfm::io {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);  // creates the temporary file; throws tfm::Error
  ~AtomicFileWriter();                          // removes the temporary file unless committed
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);  // throws tfm::Error naming the path (e.g. ENOSPC)
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Overwrites bytes already written, at `offset` from the start (e.g. a header whose counts are known
  // only at the end); throws tfm::Error naming the path.
  void write_at(size_t offset, const void* data, size_t size);
  void commit();  // flush, fsync, close, rename, fsync folder

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);  // whole file; throws tfm::Error naming the path

}  // namespace tfm::io
