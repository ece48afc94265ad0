#include "serve/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace tfm::serve {

namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  ++counts_[i], sum_ += value, ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& labels) const {
  std::string out;
  const std::string sep = labels.empty() ? "" : ",";
  int64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? fmt::format("{}", bounds_[i]) : "+Inf";
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, le, cumulative);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
  return out;
}

Metrics::Metrics()
    : first_token_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      token_gap_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::count_tokens(const std::string& model, int64_t prompt, int64_t generated) {
  std::lock_guard lock(mutex_);
  auto& t = tokens_[model];
  t.first += prompt, t.second += generated;
}

void Metrics::observe_first_token(double seconds) {
  std::lock_guard lock(mutex_);
  first_token_.observe(seconds);
}

void Metrics::observe_token_gap(double seconds) {
  std::lock_guard lock(mutex_);
  token_gap_.observe(seconds);
}

std::string Metrics::render(const std::vector<std::pair<std::string, SchedulerStats>>& models) const {
  std::lock_guard lock(mutex_);
  std::string out;
  header(out, "tfm_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, n] : requests_)
    out += fmt::format("tfm_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", label_value(key.first),
                       key.second, n);
  header(out, "tfm_prompt_tokens_total", "counter", "Prompt tokens processed.");
  for (const auto& [model, t] : tokens_)
    out += fmt::format("tfm_prompt_tokens_total{{model=\"{}\"}} {}\n", label_value(model), t.first);
  header(out, "tfm_generated_tokens_total", "counter", "Tokens generated.");
  for (const auto& [model, t] : tokens_)
    out += fmt::format("tfm_generated_tokens_total{{model=\"{}\"}} {}\n", label_value(model), t.second);
  struct Gauge {
    const char* name;
    const char* help;
    int64_t SchedulerStats::*field;
  };
  const Gauge gauges[] = {
      {"tfm_queue_length", "Sequences waiting for admission.", &SchedulerStats::waiting},
      {"tfm_running_sequences", "Sequences decoding.", &SchedulerStats::running},
      {"tfm_kv_cache_bytes", "KV-cache bytes reserved by running sequences.", &SchedulerStats::kv_bytes},
      {"tfm_kv_cache_budget_bytes", "The KV-cache budget.", &SchedulerStats::kv_budget},
  };
  for (const Gauge& g : gauges) {
    header(out, g.name, "gauge", g.help);
    for (const auto& [model, s] : models)
      out += fmt::format("{}{{model=\"{}\"}} {}\n", g.name, label_value(model), s.*g.field);
  }
  header(out, "tfm_batch_passes_total", "counter", "Batched forward passes run.");
  for (const auto& [model, s] : models)
    out += fmt::format("tfm_batch_passes_total{{model=\"{}\"}} {}\n", label_value(model), s.passes);
  header(out, "tfm_batch_rows_total", "counter",
         "Rows fed by the batched passes (divide by passes: mean batch).");
  for (const auto& [model, s] : models)
    out += fmt::format("tfm_batch_rows_total{{model=\"{}\"}} {}\n", label_value(model), s.pass_rows);
  header(out, "tfm_batch_pass_seconds_total", "counter", "Time spent in the batched forward passes.");
  for (const auto& [model, s] : models)
    out +=
        fmt::format("tfm_batch_pass_seconds_total{{model=\"{}\"}} {}\n", label_value(model), s.pass_seconds);
  header(out, "tfm_time_to_first_token_seconds", "histogram", "From a request's arrival to its first token.");
  out += first_token_.render("tfm_time_to_first_token_seconds", "");
  header(out, "tfm_time_per_output_token_seconds", "histogram", "Between two tokens of one sequence.");
  out += token_gap_.render("tfm_time_per_output_token_seconds", "");
  return out;
}

}  // namespace tfm::serve
