#include <gtest/gtest.h>

#include "tensor/arena.h"
#include "tensor/tensor.h"

namespace tfm {
namespace {

Tensor iota(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = float(i);
  return t;
}

TEST(Tensor, ViewsShareStorage) {
  Tensor a = iota({2, 3, 4});
  Tensor t = a.transpose(0, 2);  // [4, 3, 2]
  EXPECT_EQ(t.shape(), Shape({4, 3, 2}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.at({3, 2, 1}), a.at({1, 2, 3}));
  Tensor n = a.narrow(1, 1, 2);  // [2, 2, 4]
  EXPECT_EQ(n.at({1, 0, 2}), a.at({1, 1, 2}));
  Tensor s = a.select(0, 1);
  EXPECT_EQ(s.shape(), Shape({3, 4}));
  EXPECT_EQ(s.at({2, 3}), 23.0);
  a.f32()[23] = -1;
  EXPECT_EQ(s.at({2, 3}), -1.0);
}

TEST(Tensor, ContiguousCopyFollowsStrides) {
  Tensor a = iota({2, 3});
  Tensor t = a.transpose(0, 1).contiguous();
  ASSERT_TRUE(t.is_contiguous());
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(t.at({i, j}), a.at({j, i}));
}

TEST(Tensor, ViewInfersAndRejects) {
  Tensor a = iota({2, 3, 4});
  EXPECT_EQ(a.view({6, -1}).shape(), Shape({6, 4}));
  EXPECT_THROW(a.view({5, -1}), Error);
  EXPECT_THROW(a.transpose(0, 1).view({6, 4}), Error);
}

TEST(Tensor, HalfAndBFloatRoundTrip) {
  // Values exactly representable in both formats survive; others round to nearest.
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 0.00006103515625f, 1.0f / 1024}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
  }
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 4096)), 1.0f);  // ties to even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(3.140625f)), 3.140625f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 512)), 1.0f);  // ties to even
  Tensor a = iota({4});
  Tensor h = a.to(DType::F16).to(DType::F32);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h.at({i}), double(i));
}

TEST(Tensor, AlignedTo64Bytes) {
  for (int n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  }
}

TEST(Arena, SteadyStateNeedsNoNewBlocks) {
  Arena arena;
  auto step = [&] {
    ArenaScope scope(&arena);
    for (int i = 0; i < 50; ++i) {
      Tensor t = Tensor::empty({1 << 16});
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
    }
  };
  step();
  arena.reset();
  size_t after_first = arena.heap_allocations();
  for (int k = 0; k < 3; ++k) {
    step();
    arena.reset();
  }
  EXPECT_EQ(arena.heap_allocations(), after_first);
  EXPECT_GE(arena.capacity(), size_t(50) << 18);
}

}  // namespace
}  // namespace tfm
