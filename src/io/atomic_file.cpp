#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "core/error.h"

namespace tfm::io {

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string parent_folder(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Makes the rename that put a file into `folder` durable.
void fsync_folder(const std::string& folder, const std::string& path) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail("{}: written, but opening its folder {} to sync it failed: {}", path, folder, errno_text());
  // Some file systems cannot sync a folder (EINVAL); the rename is then as durable as it gets.
  if (::fsync(fd) != 0 && errno != EINVAL) {
    std::string err = errno_text();
    ::close(fd);
    fail("{}: written, but syncing its folder {} failed: {}", path, folder, err);
  }
  ::close(fd);
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(tmp_path_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot create temporary file {}: {}", path_, tmp_path_, errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t size) {
  TFM_CHECK(fd_ >= 0 && !committed_, "write to {} after commit()", path_);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("{}: writing temporary file {} failed: {}", path_, tmp_path_, errno_text());
    }
    p += n;
    size -= size_t(n);
  }
}

void AtomicFileWriter::write_at(size_t offset, const void* data, size_t size) {
  TFM_CHECK(fd_ >= 0 && !committed_, "write to {} after commit()", path_);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd_, p, size, off_t(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("{}: writing temporary file {} failed: {}", path_, tmp_path_, errno_text());
    }
    p += n;
    offset += size_t(n);
    size -= size_t(n);
  }
}

void AtomicFileWriter::commit() {
  TFM_CHECK(fd_ >= 0 && !committed_, "commit of {} twice", path_);
  if (::fsync(fd_) != 0) fail("{}: syncing temporary file {} failed: {}", path_, tmp_path_, errno_text());
  int fd = fd_;
  fd_ = -1;
  // close() can report a deferred write error (e.g. on network file systems).
  if (::close(fd) != 0) fail("{}: closing temporary file {} failed: {}", path_, tmp_path_, errno_text());
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    fail("{}: renaming temporary file {} into place failed: {}", path_, tmp_path_, errno_text());
  committed_ = true;
  fsync_folder(parent_folder(path_), path_);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFileWriter writer(path);
  writer.write(contents);
  writer.commit();
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, errno_text());
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(size_t(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = errno_text();
      ::close(fd);
      fail("{}: read failed: {}", path, err);
    }
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

}  // namespace tfm::io
