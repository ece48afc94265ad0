#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace tfm::io {

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

MappedFile map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open: {}", std::strerror(errno));
  FdCloser closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail("cannot stat: {}", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  const size_t size = size_t(st.st_size);
  if (size == 0) return {};
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail("cannot map: {}", std::strerror(errno));
  return {std::shared_ptr<void>(p, [size](void* q) { ::munmap(q, size); }), static_cast<const char*>(p),
          size};
}

}  // namespace tfm::io
