// The server's counters and histograms, rendered in Prometheus' text exposition format (version 0.0.4):
// requests by endpoint and status, prompt and generated tokens, time to first token and per-token latency;
// the schedulers' gauges (waiting and running sequences, KV-cache bytes) are read when rendering.
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "serve/scheduler.h"

namespace tfm::serve {

// Counts of observations at most each bound (cumulative when rendered), their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // The `name`_bucket / _sum / _count lines.
  std::string render(const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bound, then +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  void count_tokens(const std::string& model, int64_t prompt, int64_t generated);
  void observe_first_token(double seconds);
  void observe_token_gap(double seconds);  // between two tokens of one sequence
  // Everything, with each model's scheduler gauges.
  std::string render(const std::vector<std::pair<std::string, SchedulerStats>>& models) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, std::pair<int64_t, int64_t>> tokens_;  // model -> (prompt, generated)
  Histogram first_token_, token_gap_;
};

}  // namespace tfm::serve
