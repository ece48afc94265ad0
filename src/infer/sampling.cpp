#include "infer/sampling.h"

#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace tfm::infer {

namespace {

// Picks the next token of `source` from its processed scores; `generated` tokens came before it.
using Chooser = std::function<int64_t(std::span<float> scores, int64_t source, int64_t generated)>;

std::vector<std::vector<int64_t>> generate(DecoderStep& decoder,
                                           const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerationRules& rules, const Chooser& choose,
                                           const TokenCallback& on_token) {
  const int64_t vocab = decoder.vocab_size();
  validate_prompts(prompts, vocab);
  validate(rules, vocab);
  std::vector<std::vector<int64_t>> sequences = prompts;  // prompt + generated, what the rules look at
  std::vector<std::vector<int64_t>> generated(prompts.size());
  std::vector<int64_t> live(prompts.size());
  std::iota(live.begin(), live.end(), 0);
  std::vector<float> row(static_cast<size_t>(vocab));
  Tensor logits_tensor = decoder.prefill(live, prompts);
  while (true) {
    const float* logits = checked_logits(logits_tensor, int64_t(live.size()), vocab);
    std::vector<int64_t> next_live, next_tokens;
    for (size_t i = 0; i < live.size(); ++i) {
      const int64_t s = live[i];
      const int64_t done = int64_t(generated[size_t(s)].size());
      row.assign(logits + int64_t(i) * vocab, logits + int64_t(i + 1) * vocab);
      apply_rules(row, sequences[size_t(s)], done, rules);
      const int64_t token = choose(row, s, done);
      if (row[size_t(token)] == -std::numeric_limits<float>::infinity())
        fail("source {}, token {}: every token is masked by the generation rules", s, done);
      generated[size_t(s)].push_back(token);
      sequences[size_t(s)].push_back(token);
      if (on_token) on_token(s, token);
      const bool stop = (rules.eos_id && token == *rules.eos_id) || done + 1 == rules.max_new_tokens;
      if (!stop) next_live.push_back(s), next_tokens.push_back(token);
    }
    if (next_live.empty()) break;
    live = std::move(next_live);
    logits_tensor = decoder.step(live, next_tokens);
  }
  return generated;
}

}  // namespace

void validate_prompts(const std::vector<std::vector<int64_t>>& prompts, int64_t vocab) {
  if (prompts.empty()) fail("nothing to decode: no prompts");
  for (size_t s = 0; s < prompts.size(); ++s) {
    if (prompts[s].empty())
      fail("prompt {} is empty (an encoder-decoder starts from its decoder start token)", s);
    for (size_t t = 0; t < prompts[s].size(); ++t)
      if (prompts[s][t] < 0 || prompts[s][t] >= vocab)
        fail("prompt {}, position {}: token id {} is outside the vocabulary (size {})", s, t, prompts[s][t],
             vocab);
  }
}

std::vector<std::vector<int64_t>> greedy_search(DecoderStep& decoder,
                                                const std::vector<std::vector<int64_t>>& prompts,
                                                const GenerationRules& rules, const TokenCallback& on_token) {
  return generate(
      decoder, prompts, rules, [](std::span<float> scores, int64_t, int64_t) { return argmax(scores); },
      on_token);
}

std::vector<std::vector<int64_t>> sample(DecoderStep& decoder,
                                         const std::vector<std::vector<int64_t>>& prompts,
                                         const GenerationRules& rules, const SamplingOptions& options,
                                         const TokenCallback& on_token) {
  validate(options);
  auto choose = [&](std::span<float> scores, int64_t source, int64_t generated) {
    apply_warpers(scores, options);
    return draw_token(scores, uniform_at(options.seed, uint64_t(source) << 32 | uint64_t(generated)));
  };
  return generate(decoder, prompts, rules, choose, on_token);
}

}  // namespace tfm::infer
