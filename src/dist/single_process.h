// The communicator of a run of one process: every collective is the identity, and nothing waits.
#pragma once

#include "dist/communicator.h"

namespace tfm::dist {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  std::string host() const override;
  void set_context(const std::string&) override {}
  void set_timeout(double) override {}
  Request all_reduce_start(std::span<float>) override { return 0; }
  bool test(Request) override { return true; }
  void wait(Request) override {}
  void all_reduce(std::span<double>) override {}
  void reduce_scatter(std::span<float>, std::span<const int64_t>) override {}
  void all_gather(std::span<float>, std::span<const int64_t>) override {}
  void gather(std::span<float>, std::span<const int64_t>, int) override {}
  std::vector<double> all_gather(std::span<const double> values) override {
    return {values.begin(), values.end()};
  }
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

}  // namespace tfm::dist
