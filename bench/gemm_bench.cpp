// Times the candidates behind tfm's gemm() / gemm_batched() on the products of a Transformer training step
// and of decoding (see BENCHMARKS.md for the figures and the decision). Every case computes C = op(A) op(B)
// (alpha 1, beta 0) on contiguous, 64-byte aligned row-major float32 operands. Threads: OMP_NUM_THREADS;
// OpenBLAS is told the same count.
//
// Names: <candidate>/<config>/<product>/<trans>/<M>x<N>x<K>[/batch<n>], so that
// --benchmark_filter picks candidates or shapes by regex.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>

#include <chrono>
#include <dnnl.hpp>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_invariant.h"

namespace {

struct Case {
  std::string name;
  bool ta, tb;
  int64_t M, N, K;
  int64_t batch;
};

// 64-byte aligned storage, as tfm's tensors have (tensor/tensor.h): rows of a multiple of 16 floats then
// start on cache lines, which gemm_row_invariant()'s row loads (unlike oneDNN's packing) are sensitive to.
template <typename T>
struct Aligned {
  using value_type = T;
  Aligned() = default;
  template <typename U>
  Aligned(const Aligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const Aligned&) const = default;
};
using Floats = std::vector<float, Aligned<float>>;

// One matrix multiplication, or a batch of them, as row-major arrays filled with noise in [-1, 1].
struct Operands {
  explicit Operands(const Case& c)
      : lda(c.ta ? c.M : c.K),
        ldb(c.tb ? c.K : c.N),
        ldc(c.N),
        a(noise(c.batch * c.M * c.K)),
        b(noise(c.batch * c.K * c.N)),
        c(c.batch * c.M * c.N) {}

  static Floats noise(int64_t n) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1, 1);
    Floats v(n);
    for (float& x : v) x = u(rng);
    return v;
  }

  int64_t lda, ldb, ldc;
  Floats a, b, c;
};

// Times fn() after one untimed call (JIT code generation, first touch of the pages); reports GFLOP/s.
template <typename Fn>
void measure(benchmark::State& state, const Case& c, Fn fn) {
  fn();
  for (auto _ : state) fn();
  state.counters["GFLOPs"] =
      benchmark::Counter(2e-9 * c.batch * c.M * c.N * c.K, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = omp_get_max_threads();
}

void run_dnnl_sgemm(const Case& c, Operands& o, int64_t i) {
  dnnl_sgemm(c.ta ? 'T' : 'N', c.tb ? 'T' : 'N', c.M, c.N, c.K, 1.f, o.a.data() + i * c.M * c.K, o.lda,
             o.b.data() + i * c.K * c.N, o.ldb, 0.f, o.c.data() + i * c.M * c.N, o.ldc);
}

// OpenBLAS's pthread workers keep a core busy for about 0.1 s after starting and after each call before
// they sleep: wait that out, so that they do not slow down whatever is timed next.
void let_openblas_sleep() { std::this_thread::sleep_for(std::chrono::milliseconds(150)); }

void run_openblas(const Case& c, Operands& o, int64_t i) {
  cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans, c.M, c.N,
              c.K, 1.f, o.a.data() + i * c.M * c.K, o.lda, o.b.data() + i * c.K * c.N, o.ldb, 0.f,
              o.c.data() + i * c.M * c.N, o.ldc);
}

// op(X) [rows, cols] (times `batch`, `stride` apart) over row-major storage with leading dimension ld.
dnnl::memory::desc matrix_desc(int64_t batch, int64_t rows, int64_t cols, bool trans, int64_t ld,
                               int64_t stride) {
  using dims = dnnl::memory::dims;
  dims strides = trans ? dims{1, ld} : dims{ld, 1};
  if (batch == 1) return {{rows, cols}, dnnl::memory::data_type::f32, strides};
  return {{batch, rows, cols}, dnnl::memory::data_type::f32, {stride, strides[0], strides[1]}};
}

// A matmul primitive built once for the case (all `batch` products in one primitive, or one product),
// with memory objects whose data handles are reset on every call, as gemm()'s cache does.
// Built and run on one thread: oneDNN's default scratchpad forbids moving a primitive between threads.
class Matmul {
 public:
  Matmul(const Case& c, const Operands& o, int64_t batch)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    auto a = matrix_desc(batch, c.M, c.K, c.ta, o.lda, c.M * c.K);
    auto b = matrix_desc(batch, c.K, c.N, c.tb, o.ldb, c.K * c.N);
    auto d = matrix_desc(batch, c.M, c.N, false, o.ldc, c.M * c.N);
    pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, d), engine_);
    prim_ = dnnl::matmul(pd_);
    a_ = dnnl::memory(a, engine_, nullptr);
    b_ = dnnl::memory(b, engine_, nullptr);
    c_ = dnnl::memory(d, engine_, nullptr);
  }

  void run(const float* a, const float* b, float* c) {
    a_.set_data_handle(const_cast<float*>(a));
    b_.set_data_handle(const_cast<float*>(b));
    c_.set_data_handle(c);
    // The C call takes the arguments as an array; the C++ one wants a std::unordered_map per call.
    dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC, a_.get()}, {DNNL_ARG_WEIGHTS, b_.get()}, {DNNL_ARG_DST, c_.get()}};
    dnnl_primitive_execute(prim_.get(), stream_.get(), 3, args);
    stream_.wait();
  }

  std::string impl() const { return pd_.impl_info_str(); }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  dnnl::memory a_, b_, c_;
};

void bm_dnnl_sgemm(benchmark::State& state, const Case& c) {
  Operands o(c);
  measure(state, c, [&] { run_dnnl_sgemm(c, o, 0); });
}

void bm_dnnl_matmul(benchmark::State& state, const Case& c) {
  Operands o(c);
  Matmul m(c, o, 1);
  measure(state, c, [&] { m.run(o.a.data(), o.b.data(), o.c.data()); });
  state.SetLabel(m.impl());
}

// What tfm ships: gemm() / gemm_batched(), whichever candidate they use (see src/kernels/cpu/gemm.cpp).
void bm_tfm(benchmark::State& state, const Case& c) {
  Operands o(c);
  measure(state, c, [&] {
    tfm::kernels::gemm_batched(c.batch, c.ta, c.tb, c.M, c.N, c.K, 1, o.a.data(), o.lda, c.M * c.K,
                               o.b.data(), o.ldb, c.K * c.N, 0, o.c.data(), o.ldc, c.M * c.N);
  });
}

// What a server in row-invariant mode runs instead (kernels/cpu/gemm_invariant.h).
void bm_row_invariant(benchmark::State& state, const Case& c) {
  Operands o(c);
  measure(state, c, [&] {
    tfm::kernels::gemm_row_invariant(c.ta, c.tb, c.M, c.N, c.K, 1, o.a.data(), o.lda, o.b.data(), o.ldb, 0,
                                     o.c.data(), o.ldc);
  });
}

void bm_openblas(benchmark::State& state, const Case& c) {
  Operands o(c);
  measure(state, c, [&] { run_openblas(c, o, 0); });
  let_openblas_sleep();
}

// (d) batched: one strided matmul primitive over the whole batch ...
void bm_batched_matmul(benchmark::State& state, const Case& c) {
  Operands o(c);
  Matmul m(c, o, c.batch);
  measure(state, c, [&] { m.run(o.a.data(), o.b.data(), o.c.data()); });
  state.SetLabel(m.impl());
}

// ... against an OpenMP loop over the batch, each thread running single GEMMs.
void bm_loop_dnnl_sgemm(benchmark::State& state, const Case& c) {
  Operands o(c);
  measure(state, c, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < c.batch; ++i) run_dnnl_sgemm(c, o, i);
  });
}

void bm_loop_dnnl_matmul(benchmark::State& state, const Case& c) {
  Operands o(c);
  // One primitive per OpenMP thread, built inside a parallel region (so single-threaded) by that thread;
  // OpenMP keeps the team's threads between regions, so thread i always runs the primitive it built.
  std::vector<std::unique_ptr<Matmul>> per_thread(omp_get_max_threads());
#pragma omp parallel
  per_thread[omp_get_thread_num()] = std::make_unique<Matmul>(c, o, 1);
  measure(state, c, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < c.batch; ++i)
      per_thread[omp_get_thread_num()]->run(o.a.data() + i * c.M * c.K, o.b.data() + i * c.K * c.N,
                                            o.c.data() + i * c.M * c.N);
  });
}

void bm_loop_openblas(benchmark::State& state, const Case& c) {
  Operands o(c);
  openblas_set_num_threads(1);  // the loop provides the threads
  measure(state, c, [&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < c.batch; ++i) run_openblas(c, o, i);
  });
  openblas_set_num_threads(omp_get_max_threads());
  let_openblas_sleep();
}

// The products of one training step of a layer y = x W^T (W stored [n, k], as PyTorch does) over m rows:
// forward y = x W^T, input gradient dx = dy W, weight gradient dW = dy^T x.
void add_linear(std::vector<Case>& cases, const std::string& config, const std::string& layer, int64_t m,
                int64_t n, int64_t k) {
  cases.push_back({config + "/" + layer + ".fwd", false, true, m, n, k, 1});
  cases.push_back({config + "/" + layer + ".dx", false, false, m, k, n, 1});
  cases.push_back({config + "/" + layer + ".dw", true, false, n, k, m, 1});
}

std::vector<Case> linear_cases() {
  std::vector<Case> cases;
  // seed-base: batch 8 x length 128 rows, d_model 512, d_ff 2048, vocab 16000.
  add_linear(cases, "seed", "proj", 1024, 512, 512);
  add_linear(cases, "seed", "ff1", 1024, 2048, 512);
  add_linear(cases, "seed", "ff2", 1024, 512, 2048);
  add_linear(cases, "seed", "logits", 1024, 16000, 512);
  // small: batch 32 x length 64 rows, d_model 256, d_ff 1024, vocab 8000.
  add_linear(cases, "small", "proj", 2048, 256, 256);
  add_linear(cases, "small", "ff1", 2048, 1024, 256);
  add_linear(cases, "small", "ff2", 2048, 256, 1024);
  add_linear(cases, "small", "logits", 2048, 8000, 256);
  // Decoding with a KV cache: a few rows at a time (forward only), where gemm() switches candidates.
  for (int64_t m : {1, 4, 16}) {
    cases.push_back({"rows" + std::to_string(m) + "/proj.fwd", false, true, m, 512, 512, 1});
    cases.push_back({"rows" + std::to_string(m) + "/logits.fwd", false, true, m, 16000, 512, 1});
  }
  return cases;
}

// Attention per (sequence, head), heads stored contiguously [batch*heads, length, d_head]:
// scores S = Q K^T, context O = P V, and the backward's transposed product dV = P^T dO.
std::vector<Case> attention_cases() {
  std::vector<Case> cases;
  for (auto [config, batch, len] : {std::tuple{"seed", 8 * 8, 128}, std::tuple{"small", 32 * 4, 64}}) {
    std::string prefix = std::string(config) + "/attn.";
    cases.push_back({prefix + "scores", false, true, len, len, 64, batch});
    cases.push_back({prefix + "context", false, false, len, 64, len, batch});
    cases.push_back({prefix + "dv", true, false, len, 64, len, batch});
  }
  return cases;
}

// Batched decoding: a linear layer's forward product over the M requests of a step, for projections,
// feed-forward layers and vocabularies of several sizes (N x K weights).
std::vector<Case> decode_cases() {
  std::vector<Case> cases;
  for (int64_t m : {1, 4, 16, 64, 256})
    for (auto [n, k] : {std::pair<int64_t, int64_t>{256, 256},
                        {1024, 256},
                        {256, 1024},
                        {8000, 256},
                        {3072, 768},
                        {768, 3072},
                        {50257, 768}})
      cases.push_back({"decode/linear.fwd", false, true, m, n, k, 1});
  return cases;
}

std::string shape_name(const Case& c) {
  std::string s = c.name + "/" + (c.ta ? "T" : "N") + (c.tb ? "T" : "N") + "/" + std::to_string(c.M) + "x" +
                  std::to_string(c.N) + "x" + std::to_string(c.K);
  if (c.batch > 1) s += "/batch" + std::to_string(c.batch);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(omp_get_max_threads());
  let_openblas_sleep();
  using Fn = void (*)(benchmark::State&, const Case&);
  const std::pair<const char*, Fn> single[] = {{"dnnl_sgemm", bm_dnnl_sgemm},
                                               {"dnnl_matmul", bm_dnnl_matmul},
                                               {"openblas", bm_openblas},
                                               {"tfm", bm_tfm}};
  const std::pair<const char*, Fn> batched[] = {{"batched_matmul", bm_batched_matmul},
                                                {"loop_dnnl_sgemm", bm_loop_dnnl_sgemm},
                                                {"loop_dnnl_matmul", bm_loop_dnnl_matmul},
                                                {"loop_openblas", bm_loop_openblas},
                                                {"tfm", bm_tfm}};
  for (const Case& c : linear_cases())
    for (auto [name, fn] : single)
      benchmark::RegisterBenchmark((std::string(name) + "/" + shape_name(c)).c_str(), fn, c)->UseRealTime();
  // gemm() against its row-invariant alternative.
  const std::pair<const char*, Fn> invariant[] = {{"tfm", bm_tfm}, {"row_invariant", bm_row_invariant}};
  for (const Case& c : decode_cases())
    for (auto [name, fn] : invariant)
      benchmark::RegisterBenchmark((std::string(name) + "/" + shape_name(c)).c_str(), fn, c)->UseRealTime();
  for (const Case& c : attention_cases())
    for (auto [name, fn] : batched)
      benchmark::RegisterBenchmark((std::string(name) + "/" + shape_name(c)).c_str(), fn, c)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
