// Shared test helpers: tolerance checks that report where and by how much, and the fixture root.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/tensor.h"

namespace tfm::test {

// Relative error ||got - want|| / ||want|| (L2 over all elements), computed in double.
double relative_error(const Tensor& got, const Tensor& want);

// Passes when shapes match and relative_error <= rtol; otherwise reports the max abs error, the
// relative error and the first index whose element differs most.
::testing::AssertionResult expect_close(const std::string& name, const Tensor& got, const Tensor& want,
                                        double rtol);

// n floats drawn uniformly from [-1, 1) by std::mt19937(seed).
std::vector<float> uniform_noise(int64_t n, uint32_t seed);

// Root of the reference fixtures: $TFM_FIXTURES, default <shared>/fixtures.
std::string fixtures_root();
// The shared/ folder (fixtures, data, models) beside the checkout.
std::string shared_dir();
// A fresh empty temporary directory, removed at process exit.
std::string temp_dir(const std::string& tag);

// The message of the tfm::Error that fn throws ("" and a test failure if it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no tfm::Error thrown";
  return "";
}

}  // namespace tfm::test
