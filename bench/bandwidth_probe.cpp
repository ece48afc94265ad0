// The machine's memory bandwidth, the limit of batch-1 decoding: a token reads every weight once, so
// tokens/s can be at most bandwidth / weight bytes (issue 17). Streams a buffer far larger than the caches
// (--mb, 1024) with --threads threads (OpenMP, static split: each thread reads its own contiguous part, as
// a GEMV splitting output rows does), --repeat times after one untimed pass, and prints one JSON line per
// kernel with the best time's GB/s:
//   read   sum of floats (AVX-512 or AVX2 where compiled for it): what a GEMV does with its weights
//   copy   memcpy-like, read + write counted
//
//   build/bench/tfm_bench_bandwidth --threads 2
#include <immintrin.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Sum of a[0, n): four independent vector accumulators, so the loads, not the adds, set the pace.
float read_sum(const float* a, size_t n) {
  size_t i = 0;
  float s = 0;
#ifdef __AVX512F__
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_add_ps(acc0, _mm512_loadu_ps(a + i));
    acc1 = _mm512_add_ps(acc1, _mm512_loadu_ps(a + i + 16));
    acc2 = _mm512_add_ps(acc2, _mm512_loadu_ps(a + i + 32));
    acc3 = _mm512_add_ps(acc3, _mm512_loadu_ps(a + i + 48));
  }
  s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
#elif defined(__AVX2__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(a + i));
    acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(a + i + 8));
    acc2 = _mm256_add_ps(acc2, _mm256_loadu_ps(a + i + 16));
    acc3 = _mm256_add_ps(acc3, _mm256_loadu_ps(a + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (float lane : lanes) s += lane;
#endif
  for (; i < n; ++i) s += a[i];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Memory bandwidth probe (streaming read and copy)");
  int threads = 0, repeat = 5;
  size_t mb = 1024;
  app.add_option("--threads", threads, "OpenMP threads (default: OMP's)");
  app.add_option("--mb", mb, "buffer size in MB");
  app.add_option("--repeat", repeat, "timed passes (the best is reported)");
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  const int used = omp_get_max_threads();
  const size_t n = mb * 1024 * 1024 / sizeof(float);
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]);
  // First touch by the threads that will read each part.
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) a[i] = float(i & 1023) * 1e-3f, b[i] = 0;

  double best_read = 1e30, best_copy = 1e30;
  float sink = 0;
  for (int r = 0; r <= repeat; ++r) {
    auto start = Clock::now();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const size_t t = size_t(omp_get_thread_num()), parts = size_t(omp_get_num_threads());
      const size_t begin = n * t / parts, end = n * (t + 1) / parts;
      total += read_sum(a.get() + begin, end - begin);
    }
    const double read = seconds_since(start);
    sink += total;
    start = Clock::now();
#pragma omp parallel
    {
      const size_t t = size_t(omp_get_thread_num()), parts = size_t(omp_get_num_threads());
      const size_t begin = n * t / parts, end = n * (t + 1) / parts;
      std::memcpy(b.get() + begin, a.get() + begin, (end - begin) * sizeof(float));
    }
    const double copy = seconds_since(start);
    if (r > 0) best_read = std::min(best_read, read), best_copy = std::min(best_copy, copy);
  }
  const double bytes = double(n) * sizeof(float);
  std::printf("%s\n",
              nlohmann::json(
                  {{"kernel", "read"}, {"threads", used}, {"mb", mb}, {"gb_per_s", bytes / best_read / 1e9}})
                  .dump()
                  .c_str());
  std::printf("%s\n", nlohmann::json({{"kernel", "copy"},
                                      {"threads", used},
                                      {"mb", mb},
                                      {"gb_per_s", 2 * bytes / best_copy / 1e9},
                                      {"checksum", double(sink + b[n / 2])}})
                          .dump()
                          .c_str());
  return 0;
}
