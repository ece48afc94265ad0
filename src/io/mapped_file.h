// A whole regular file mapped read-only into memory (mmap), shared by the readers of mapped formats
// (safetensors, token files).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace tfm::io {

struct MappedFile {
  std::shared_ptr<void> memory;  // the mapping, unmapped when the last owner goes; null for an empty file
  const char* data = nullptr;    // memory's bytes; read-only: writing through them faults
  size_t size = 0;
};

// Maps `path`. Throws tfm::Error (not naming the path: callers add it) if it cannot be opened, is not a
// regular file, or cannot be mapped. An empty file is not mapped (mmap refuses a length of 0): the
// result is {null, null, 0}.
MappedFile map_file(const std::string& path);

}  // namespace tfm::io
