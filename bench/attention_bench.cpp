// One causal self-attention layer's training work at a given sequence length: attention() forward and
// backward on a tape, as a training step runs it, with q, k, v [1, T, heads * head_dim] (GPT-2 small's
// 12 heads of 64 by default). Prints one JSON line: the kernel, T, the median time of forward + backward,
// and peak memory: the process's peak RSS and its growth over the RSS before the first step (the inputs,
// their gradients and the kernel's own buffers). Run one length per process so the peaks do not mix.
//
//   for T in 512 1024 2048 4096; do for k in flash dense; do
//     build/bench/tfm_bench_attention --len $T --kernel $k; done; done
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "bench_util.h"

namespace {

using namespace tfm;
using bench::peak_rss_mb;

Tensor random_tensor(std::mt19937& g, Shape shape) {
  Tensor t = Tensor::empty_persistent(shape);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(g);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("causal attention forward + backward: time and peak memory at one sequence length");
  int64_t len = 1024, heads = 12, head_dim = 64;
  int threads = 2, repeats = 5;
  std::string kernel = "flash";
  app.add_option("--len", len)->check(CLI::Range(1, 1 << 20));
  app.add_option("--heads", heads)->check(CLI::PositiveNumber);
  app.add_option("--head-dim", head_dim)->check(CLI::PositiveNumber);
  app.add_option("--kernel", kernel)->check(CLI::IsMember({"flash", "dense"}));
  app.add_option("--threads", threads)->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats)->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  omp_set_num_threads(threads);
  ag::set_attention_kernel(kernel == "flash" ? ag::AttentionKernel::Flash : ag::AttentionKernel::Dense);

  std::mt19937 g(1);
  const Shape shape{1, len, heads * head_dim};
  Tensor q = random_tensor(g, shape), k = random_tensor(g, shape), v = random_tensor(g, shape);
  Tensor dout = random_tensor(g, shape);
  const double rss_before = peak_rss_mb();
  ag::AttentionOptions o;
  o.heads = int(heads);
  o.scale = 1.0f / std::sqrt(float(head_dim));
  o.causal = true;
  ag::Tape tape;
  std::vector<double> ms;
  for (int r = 0; r < repeats + 1; ++r) {
    tape.reset();
    ag::Tape::Scope scope(tape);
    auto t0 = std::chrono::steady_clock::now();
    ag::Var qv = tape.leaf(q, true), kv = tape.leaf(k, true), vv = tape.leaf(v, true);
    ag::Var y = ag::attention(qv, kv, vv, o, /*training=*/true);
    tape.backward(y, dout);
    auto t1 = std::chrono::steady_clock::now();
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  // Causal attention's products: QK^T and PV forward, four more backward, each 2 T^2 d / 2 FLOPs (half
  // the matrix is visible).
  const double flops = 6.0 * double(len) * double(len) * double(heads * head_dim);
  const double median = ms[ms.size() / 2];
  nlohmann::json out{{"kernel", kernel},
                     {"len", len},
                     {"heads", heads},
                     {"head_dim", head_dim},
                     {"threads", threads},
                     {"fwd_bwd_ms", median},
                     {"gflops", flops / (median * 1e6)},
                     {"peak_rss_MB", peak_rss_mb()},
                     {"rss_growth_MB", peak_rss_mb() - rss_before}};
  std::printf("%s\n", out.dump().c_str());
}
