// Arena: bump allocation for the tensors of one training step or one decoding call.
//
// Tensor::empty() takes memory from the innermost ArenaScope active on the calling thread.
// reset() makes all of it reusable; when a step needed more than one block, reset() merges them
// into a single block of the peak size, so from the second step on a step allocates nothing.
// Tensors taken from an arena are valid until its next reset() (their memory is then reused;
// it is never freed under them, since each tensor holds a reference to its block).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace tfm {

class Arena {
 public:
  explicit Arena(size_t initial_bytes = 0);
  // 64-byte aligned memory; `owner` receives the block that holds it.
  void* allocate(size_t bytes, std::shared_ptr<void>& owner);
  void reset();
  size_t used() const { return used_total_; }
  size_t peak() const { return peak_; }
  size_t capacity() const;
  // How many blocks were ever obtained from the heap (a steady-state test watches this).
  size_t heap_allocations() const { return heap_allocations_; }

 private:
  struct Block {
    std::shared_ptr<void> mem;
    size_t size = 0;
    size_t used = 0;
  };
  void add_block(size_t min_bytes);
  std::vector<Block> blocks_;
  size_t used_total_ = 0;
  size_t peak_ = 0;
  size_t heap_allocations_ = 0;
};

// While alive, Tensor::empty() on this thread allocates from `arena` (nullptr: from the heap).
class ArenaScope {
 public:
  explicit ArenaScope(Arena* arena);
  ~ArenaScope();
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  Arena* previous_;
};

Arena* current_arena();

// 64-byte aligned heap memory, freed when the last owner goes. Blocks of kMappedBytes or more are mapped
// pages of their own, returned to the system when freed: through malloc, glibc's sliding mmap threshold
// would soon serve such blocks from its heaps, which keep freed pages (translating a file batch after
// batch grew from 210 to 350 MB peak RSS that way; 247 MB with this, for 3% more time in page faults).
inline constexpr size_t kMappedBytes = size_t(1) << 20;
std::shared_ptr<void> aligned_alloc_shared(size_t bytes);
// The same, zeroed. Mapped blocks come zeroed from the kernel and take no memory until written: a model's
// gradients cost nothing in a process that never trains.
std::shared_ptr<void> zeroed_alloc_shared(size_t bytes);

}  // namespace tfm
