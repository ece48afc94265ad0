#include "kernels/cpu/scratch.h"

#include <array>
#include <cstddef>

namespace tfm::kernels {

float* thread_scratch(size_t n, int slot) {
  thread_local std::array<std::vector<float>, 5> buffers;
  std::vector<float>& b = buffers.at(size_t(slot));
  if (b.size() < n) b.resize(n);
  return b.data();
}

void* thread_scratch_bytes(size_t bytes, int slot) {
  thread_local std::array<std::vector<std::byte>, 3> buffers;
  std::vector<std::byte>& b = buffers.at(size_t(slot));
  if (b.size() < bytes) b.resize(bytes);
  return b.data();
}

}  // namespace tfm::kernels
