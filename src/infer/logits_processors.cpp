#include "infer/logits_processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace tfm::infer {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void check_id(const char* field, int64_t id, int64_t vocab) {
  if (id < 0 || id >= vocab) fail("{}: token id {} is outside the vocabulary (size {})", field, id, vocab);
}

// Softmax of scores into probabilities, in double.
std::vector<double> softmax(std::span<const float> scores) {
  const float max = *std::max_element(scores.begin(), scores.end());
  if (max == kNegInf)
    fail("every token is masked at this step: the generation rules leave nothing to choose");
  std::vector<double> p(scores.size());
  double sum = 0;
  for (size_t i = 0; i < scores.size(); ++i) sum += p[i] = std::exp(double(scores[i]) - double(max));
  for (double& x : p) x /= sum;
  return p;
}

void apply_top_k(std::span<float> scores, int64_t top_k) {
  const size_t k = size_t(std::min<int64_t>(top_k, int64_t(scores.size())));
  std::vector<float> sorted(scores.begin(), scores.end());
  std::nth_element(sorted.begin(), sorted.begin() + ptrdiff_t(k - 1), sorted.end(), std::greater<float>());
  const float kth = sorted[k - 1];
  for (float& s : scores)
    if (s < kth) s = kNegInf;
}

void apply_top_p(std::span<float> scores, float top_p) {
  const std::vector<double> p = softmax(scores);
  std::vector<size_t> ascending(scores.size());
  std::iota(ascending.begin(), ascending.end(), 0);
  std::stable_sort(ascending.begin(), ascending.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  const double drop_below = 1.0 - double(top_p);
  double cumulative = 0;
  for (size_t r = 0; r + 1 < ascending.size(); ++r) {  // the last (most probable) token always stays
    cumulative += p[ascending[r]];
    if (cumulative > drop_below) break;
    scores[ascending[r]] = kNegInf;
  }
}

}  // namespace

void validate(const GenerationRules& rules, int64_t vocab) {
  if (rules.max_new_tokens < 1) fail("max_new_tokens must be at least 1, got {}", rules.max_new_tokens);
  if (rules.min_new_tokens < 0) fail("min_new_tokens must not be negative, got {}", rules.min_new_tokens);
  if (!(rules.repetition_penalty > 0))
    fail("repetition_penalty must be positive, got {}", rules.repetition_penalty);
  if (rules.eos_id) check_id("eos_id", *rules.eos_id, vocab);
  if (rules.forced_eos_id) check_id("forced_eos_id", *rules.forced_eos_id, vocab);
  for (int64_t id : rules.suppressed_ids) check_id("suppressed_ids", id, vocab);
}

void apply_rules(std::span<float> scores, std::span<const int64_t> sequence, int64_t generated,
                 const GenerationRules& rules) {
  if (rules.repetition_penalty != 1.0f) {
    std::vector<int64_t> seen(sequence.begin(), sequence.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t id : seen) {
      float& s = scores[size_t(id)];
      s = s < 0 ? s * rules.repetition_penalty : s / rules.repetition_penalty;
    }
  }
  for (int64_t id : rules.suppressed_ids) scores[size_t(id)] = kNegInf;
  if (rules.eos_id && generated < rules.min_new_tokens) scores[size_t(*rules.eos_id)] = kNegInf;
  if (rules.forced_eos_id && generated == rules.max_new_tokens - 1) {
    std::fill(scores.begin(), scores.end(), kNegInf);
    scores[size_t(*rules.forced_eos_id)] = 0;
  }
}

int64_t argmax(std::span<const float> scores) {
  return std::max_element(scores.begin(), scores.end()) - scores.begin();
}

double log_sum_exp(std::span<const float> scores) {
  const float max = *std::max_element(scores.begin(), scores.end());
  double sum = 0;
  for (float x : scores) sum += std::exp(double(x) - double(max));
  return double(max) + std::log(sum);
}

std::vector<int64_t> top_indices(std::span<const float> values, size_t k) {
  std::vector<int64_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + ptrdiff_t(k), idx.end(), [&](int64_t a, int64_t b) {
    return values[size_t(a)] > values[size_t(b)] || (values[size_t(a)] == values[size_t(b)] && a < b);
  });
  idx.resize(k);
  return idx;
}

void validate(const SamplingOptions& options) {
  if (!(options.temperature > 0)) fail("temperature must be positive, got {}", options.temperature);
  if (options.top_k < 0) fail("top_k must not be negative, got {}", options.top_k);
  if (!(options.top_p > 0 && options.top_p <= 1)) fail("top_p must be in (0, 1], got {}", options.top_p);
}

void apply_warpers(std::span<float> scores, const SamplingOptions& options) {
  if (options.temperature != 1.0f)
    for (float& s : scores) s /= options.temperature;
  if (options.top_k > 0) apply_top_k(scores, options.top_k);
  if (options.top_p < 1.0f) apply_top_p(scores, options.top_p);
}

int64_t draw_token(std::span<const float> scores, float u) {
  const std::vector<double> p = softmax(scores);
  double cumulative = 0;
  int64_t last_possible = argmax(scores);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    cumulative += p[i];
    last_possible = int64_t(i);
    if (cumulative > double(u)) return int64_t(i);
  }
  return last_possible;  // u beyond the rounded total: the last token that has any probability
}

}  // namespace tfm::infer
