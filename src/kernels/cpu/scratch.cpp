#include "kernels/cpu/scratch.h"

#include <array>

namespace tfm::kernels {

float* thread_scratch(size_t n, int slot) {
  thread_local std::array<std::vector<float>, 4> buffers;
  std::vector<float>& b = buffers.at(size_t(slot));
  if (b.size() < n) b.resize(n);
  return b.data();
}

}  // namespace tfm::kernels
