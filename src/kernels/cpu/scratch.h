// Per-thread scratch memory that grows to the largest request and is then reused, so hot kernels
// that need temporary buffers (partial sums, score rows) do not allocate in steady state.
#pragma once

#include <cstddef>
#include <vector>

namespace tfm::kernels {

// A buffer of at least n floats private to the calling thread (contents unspecified). `slot`
// (0..4) distinguishes buffers that one thread needs at the same time.
float* thread_scratch(size_t n, int slot = 0);

// The same for raw bytes (other element types), in slots of their own.
void* thread_scratch_bytes(size_t bytes, int slot = 0);

}  // namespace tfm::kernels
