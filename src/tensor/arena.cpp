#include "tensor/arena.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace tfm {

namespace {
constexpr size_t kAlign = 64;
thread_local Arena* t_current = nullptr;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

std::shared_ptr<void> aligned_alloc_shared(size_t bytes) {
  if (bytes >= kMappedBytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [bytes](void* q) { ::munmap(q, bytes); });
  }
  void* p = std::aligned_alloc(kAlign, round_up(bytes == 0 ? kAlign : bytes));
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

std::shared_ptr<void> zeroed_alloc_shared(size_t bytes) {
  std::shared_ptr<void> p = aligned_alloc_shared(bytes);
  if (bytes < kMappedBytes) std::memset(p.get(), 0, bytes);
  return p;
}

Arena::Arena(size_t initial_bytes) {
  if (initial_bytes) add_block(initial_bytes);
}

void Arena::add_block(size_t min_bytes) {
  size_t size = round_up(std::max(min_bytes, size_t(1) << 20));
  blocks_.push_back(Block{aligned_alloc_shared(size), size, 0});
  ++heap_allocations_;
}

void* Arena::allocate(size_t bytes, std::shared_ptr<void>& owner) {
  bytes = round_up(bytes == 0 ? kAlign : bytes);
  if (blocks_.empty() || blocks_.back().size - blocks_.back().used < bytes) {
    size_t last = blocks_.empty() ? 0 : blocks_.back().size;
    add_block(std::max(bytes, last * 2));  // geometric growth keeps the block count small
  }
  Block& b = blocks_.back();
  void* p = static_cast<char*>(b.mem.get()) + b.used;
  b.used += bytes;
  used_total_ += bytes;
  peak_ = std::max(peak_, used_total_);
  owner = b.mem;
  return p;
}

void Arena::reset() {
  if (blocks_.size() > 1) {  // merge into one block that fits the whole peak
    size_t total = round_up(peak_);
    blocks_.clear();
    add_block(total);
  } else if (!blocks_.empty()) {
    blocks_.back().used = 0;
  }
  used_total_ = 0;
}

size_t Arena::capacity() const {
  size_t c = 0;
  for (const Block& b : blocks_) c += b.size;
  return c;
}

ArenaScope::ArenaScope(Arena* arena) : previous_(t_current) { t_current = arena; }
ArenaScope::~ArenaScope() { t_current = previous_; }
Arena* current_arena() { return t_current; }

}  // namespace tfm
