#include "test_support.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include <fmt/format.h>

namespace tfm::test {

std::vector<float> uniform_noise(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

namespace fs = std::filesystem;

double relative_error(const Tensor& got, const Tensor& want) {
  Tensor g = got.to(DType::F64), w = want.to(DType::F64);
  const double* gp = g.data<double>();
  const double* wp = w.data<double>();
  double num = 0, den = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    num += (gp[i] - wp[i]) * (gp[i] - wp[i]);
    den += wp[i] * wp[i];
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

::testing::AssertionResult expect_close(const std::string& name, const Tensor& got, const Tensor& want,
                                        double rtol) {
  if (!(got.shape() == want.shape()))
    return ::testing::AssertionFailure()
           << name << ": shape " << got.shape().str() << " expected " << want.shape().str();
  Tensor g = got.to(DType::F64), w = want.to(DType::F64);
  const double* gp = g.data<double>();
  const double* wp = w.data<double>();
  double max_abs = 0;
  int64_t worst = 0;
  bool finite = true;
  for (int64_t i = 0; i < w.numel(); ++i) {
    double d = std::fabs(gp[i] - wp[i]);
    if (!std::isfinite(gp[i])) finite = false;
    if (d > max_abs || !std::isfinite(d)) {
      max_abs = d;
      worst = i;
    }
  }
  double rel = relative_error(got, want);
  std::string msg =
      fmt::format("{}: rel err {:.3g} (tol {:.1g}), max abs err {:.3g} at flat index {} (got {}, want {})",
                  name, rel, rtol, max_abs, worst, w.numel() ? gp[worst] : 0.0, w.numel() ? wp[worst] : 0.0);
  if (finite && rel <= rtol) return ::testing::AssertionSuccess() << msg;
  return ::testing::AssertionFailure() << msg;
}

std::string shared_dir() {
  if (const char* s = std::getenv("TFM_SHARED")) return s;
  return TFM_SHARED_DIR;
}

std::string fixtures_root() {
  if (const char* s = std::getenv("TFM_FIXTURES")) return s;
  return shared_dir() + "/fixtures";
}

namespace {
struct TempDirs {
  std::vector<fs::path> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempDirs g_temp_dirs;
}  // namespace

std::string temp_dir(const std::string& tag) {
  fs::path base = fs::temp_directory_path();
  std::string tmpl = (base / ("tfm-" + tag + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back(0);
  char* p = mkdtemp(buf.data());
  if (!p) throw std::runtime_error("mkdtemp failed");
  g_temp_dirs.dirs.emplace_back(p);
  return p;
}

}  // namespace tfm::test
