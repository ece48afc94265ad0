// A DecoderStep for search tests: the logits are a known function of a row's whole prefix (prompt and
// fed tokens), so every answer can be worked out by hand or by enumeration. It records each call.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "infer/decoder_step.h"
#include "infer/logits_processors.h"

namespace tfm::test {

class ToyDecoder : public infer::DecoderStep {
 public:
  using Logits = std::function<std::vector<float>(const std::vector<int64_t>& prefix)>;

  ToyDecoder(int64_t sources, int64_t vocab, Logits logits)
      : prefixes(size_t(sources)), vocab_(vocab), logits_(std::move(logits)) {}

  int64_t vocab_size() const override { return vocab_; }

  Tensor step(std::span<const int64_t> rows, std::span<const int64_t> tokens) override {
    rows_per_call.push_back(int64_t(rows.size()));
    Tensor out = Tensor::empty({int64_t(rows.size()), vocab_});
    for (size_t i = 0; i < rows.size(); ++i) {
      std::vector<int64_t>& prefix = prefixes.at(size_t(rows[i]));
      prefix.push_back(tokens[i]);
      std::vector<float> z = logits_(prefix);
      std::copy(z.begin(), z.end(), out.f32() + int64_t(i) * vocab_);
    }
    return out;
  }

  void reorder(std::span<const int64_t> parents) override {
    std::vector<std::vector<int64_t>> next;
    for (int64_t p : parents) next.push_back(prefixes.at(size_t(p)));
    prefixes = std::move(next);
  }

  std::vector<std::vector<int64_t>> prefixes;  // what each row has been fed
  std::vector<int64_t> rows_per_call;          // rows stepped by each step() call
  int64_t rows_stepped() const {
    int64_t n = 0;
    for (int64_t r : rows_per_call) n += r;
    return n;
  }

 private:
  int64_t vocab_;
  Logits logits_;
};

// Logits whose softmax is `probs` (a zero probability becomes a very low logit, not -inf).
inline std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> z;
  for (double p : probs) z.push_back(p > 0 ? float(std::log(p)) : -60.0f);
  return z;
}

// Deterministic pseudo-random logits in [-3, 3) for a prefix: a different tree for each `salt`.
inline std::vector<float> hashed_logits(const std::vector<int64_t>& prefix, int64_t vocab, uint64_t salt) {
  uint64_t h = 0x51ed270b27a5c3f1ull ^ salt;
  for (int64_t t : prefix) h = (h ^ uint64_t(t + 1)) * 0x100000001b3ull, h ^= h >> 29;
  std::vector<float> z(static_cast<size_t>(vocab));
  for (int64_t v = 0; v < vocab; ++v) {
    uint64_t x = (h + uint64_t(v) * 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    z[size_t(v)] = float(double(x >> 11) / double(1ull << 53) * 6.0 - 3.0);
  }
  return z;
}

}  // namespace tfm::test

namespace tfm::test {

// Token ids of the hand-built trees: 0 pad (also the decoder start), 1 EOS, 2.. words.
inline constexpr int64_t kPad = 0, kEos = 1, kA = 2, kB = 3, kC = 4, kD = 5;

// A tree where greedy and beam search disagree. After the start token: A .5, B .4, EOS .1.
// After A: C .5, EOS .3, B .2; after A C: EOS .6. After B: EOS .9. Elsewhere: EOS .7.
// Greedy: A C EOS (prob .15). Beam (2 beams): B EOS (prob .36; normalised log(.36)/2 = -0.511 against
// log(.15)/3 = -0.632 for A C EOS and log(.15)/2 = -0.949 for A EOS).
inline std::vector<float> hand_tree(const std::vector<int64_t>& prefix) {
  const std::vector<int64_t> after(prefix.begin() + 1, prefix.end());
  if (after.empty()) return logits_of({0, .1, .5, .4, 0, 0});
  if (after == std::vector<int64_t>{kA}) return logits_of({0, .3, 0, .2, .5, 0});
  if (after == std::vector<int64_t>{kA, kC}) return logits_of({0, .6, .1, .1, .1, .1});
  if (after == std::vector<int64_t>{kB}) return logits_of({0, .9, .05, .05, 0, 0});
  return logits_of({0, .7, .1, .1, .05, .05});
}

// Marian's generation setup on the toy vocabulary: stop at EOS, never emit pad.
inline infer::GenerationRules marian_like_rules(int64_t max_new_tokens) {
  infer::GenerationRules r;
  r.max_new_tokens = max_new_tokens;
  r.eos_id = kEos;
  r.suppressed_ids = {kPad};
  return r;
}

}  // namespace tfm::test
