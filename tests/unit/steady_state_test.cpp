// A training step in steady state allocates nothing: from the third step on (same batch shape) the
// arena needs no new block and no C++ allocation happens in forward + backward + optimizer step.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "autograd/ops.h"
#include "models/transformer.h"
#include "train/optimizer.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};
}  // namespace

// Counting replacements of the global allocation functions (this test binary only). Every plain and
// nothrow form is replaced, so that each allocation and its release go through malloc and free.
namespace {
void* counted_alloc(size_t n) {
  if (g_counting) ++g_allocations;
  return std::malloc(n ? n : 1);
}
void* counted_alloc_or_throw(size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) { return counted_alloc_or_throw(n); }
void* operator new[](size_t n) { return counted_alloc_or_throw(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace tfm {
namespace {

TEST(SteadyState, TrainingStepAllocatesNothing) {
  ModelConfig mc;
  mc.src_vocab = 50;
  mc.tgt_vocab = 40;
  mc.d_model = 32;
  mc.heads = 4;
  mc.d_ff = 64;
  mc.encoder_layers = mc.decoder_layers = 2;
  mc.max_len = 16;
  mc.dropout = 0.1f;
  Transformer model(mc);
  model.init_weights(1);
  const ParameterList params = model.parameters().list();
  train::Adam opt(params, train::AdamOptions{});
  Tensor src = Tensor::empty_persistent({3, 9}, DType::I64),
         tgt = Tensor::empty_persistent({3, 7}, DType::I64);
  for (int64_t i = 0; i < src.numel(); ++i) src.data<int64_t>()[i] = 3 + i % 40;
  for (int64_t i = 0; i < tgt.numel(); ++i) tgt.data<int64_t>()[i] = 3 + (i * 7) % 30;
  src.data<int64_t>()[8] = 0;  // some padding
  Rng rng(3);
  ag::Tape tape;
  auto step = [&] {
    tape.reset();
    {
      ag::Tape::Scope scope(tape);
      nn::Context c{tape, true, &rng};
      tape.backward(model.loss(c, src, tgt, tgt, 0.1f));
    }
    train::clip_grad_norm(params, 1.0f);
    opt.step(1e-3f);
    opt.zero_grad();
  };
  step();
  step();
  size_t blocks = tape.arena().heap_allocations();
  g_allocations = 0;
  g_counting = true;
  step();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0) << "C++ allocations during a steady-state step";
  EXPECT_EQ(tape.arena().heap_allocations(), blocks) << "the arena grew during a steady-state step";
}

}  // namespace
}  // namespace tfm
