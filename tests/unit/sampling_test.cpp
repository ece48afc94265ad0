// Greedy search, sampling and the generation rules, on toy decoders whose answers are known by hand.
#include "infer/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "test_support.h"
#include "toy_decoder.h"

namespace tfm::test {
namespace {

using infer::GenerationRules;
using infer::SamplingOptions;
using Ids = std::vector<int64_t>;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Pearson's chi-square statistic of `counts` against `probs` (cells with probability 0 must be empty).
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs) {
  int64_t n = 0;
  for (int64_t c : counts) n += c;
  double stat = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " must never be drawn";
      continue;
    }
    const double expected = double(n) * probs[i];
    stat += (double(counts[i]) - expected) * (double(counts[i]) - expected) / expected;
  }
  return stat;
}

// How often each token is drawn as the single token of `n` sources whose logits are `logits`.
std::vector<int64_t> draw_counts(const std::vector<float>& logits, int64_t n,
                                 const SamplingOptions& options) {
  ToyDecoder toy(n, int64_t(logits.size()), [&](const Ids&) { return logits; });
  GenerationRules rules;
  rules.max_new_tokens = 1;
  std::vector<int64_t> counts(logits.size());
  for (const Ids& out : infer::sample(toy, std::vector<Ids>(size_t(n), Ids{kPad}), rules, options))
    ++counts[size_t(out.at(0))];
  return counts;
}

TEST(GenerationRules, RepetitionPenaltyDividesPositiveAndMultipliesNegativeScoresOncePerId) {
  std::vector<float> scores = {2.0f, -1.0f, 0.5f, -3.0f, 1.0f};
  GenerationRules rules;
  rules.repetition_penalty = 2.0f;
  // Id 1 occurs twice but is penalised once (HF gathers, then scatters); the prompt counts too.
  infer::apply_rules(scores, Ids{0, 1, 1}, /*generated=*/1, rules);
  EXPECT_EQ(scores, (std::vector<float>{1.0f, -2.0f, 0.5f, -3.0f, 1.0f}));
}

TEST(GenerationRules, ForcedEosOnlyForTheLastAllowedToken) {
  GenerationRules rules;
  rules.max_new_tokens = 3;
  rules.forced_eos_id = kEos;
  std::vector<float> scores = {0.5f, -1.0f, 4.0f};
  infer::apply_rules(scores, Ids{kPad, kA}, /*generated=*/1, rules);  // the 2nd of 3 tokens: untouched
  EXPECT_EQ(scores, (std::vector<float>{0.5f, -1.0f, 4.0f}));
  infer::apply_rules(scores, Ids{kPad, kA, kA}, /*generated=*/2, rules);  // the 3rd and last
  EXPECT_EQ(scores, (std::vector<float>{-kInf, 0.0f, -kInf}));
}

TEST(GenerationRules, MinNewTokensMasksEosUntilReached) {
  GenerationRules rules;
  rules.eos_id = kEos;
  rules.min_new_tokens = 2;
  std::vector<float> scores = {0.0f, 3.0f, 1.0f};
  infer::apply_rules(scores, Ids{kPad, kA}, /*generated=*/1, rules);
  EXPECT_EQ(scores[kEos], -kInf);
  scores = {0.0f, 3.0f, 1.0f};
  infer::apply_rules(scores, Ids{kPad, kA, kA}, /*generated=*/2, rules);
  EXPECT_EQ(scores[kEos], 3.0f);
}

TEST(GenerationRules, TopKKeepsEveryTokenTiedWithTheKth) {
  SamplingOptions options;
  options.top_k = 1;
  std::vector<float> scores = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  infer::apply_warpers(scores, options);
  EXPECT_EQ(scores, (std::vector<float>{-kInf, 3.0f, -kInf, 3.0f, -kInf}));
  options.top_k = 3;
  scores = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  infer::apply_warpers(scores, options);
  EXPECT_EQ(scores, (std::vector<float>{-kInf, 3.0f, 2.0f, 3.0f, -kInf}));
}

TEST(GenerationRules, TopPKeepsTheSmallestBestFirstSetReachingP) {
  // Probabilities .1 .4 .2 .3: best first .4, .3 (.7), .2 (.9), .1.
  const std::vector<float> logits = logits_of({.1, .4, .2, .3});
  auto kept = [&](float top_p) {
    SamplingOptions options;
    options.top_p = top_p;
    std::vector<float> scores = logits;
    infer::apply_warpers(scores, options);
    Ids ids;
    for (size_t i = 0; i < scores.size(); ++i)
      if (scores[i] != -kInf) ids.push_back(int64_t(i));
    return ids;
  };
  EXPECT_EQ(kept(0.3f), (Ids{1}));  // the best token alone already has .4 >= .3
  EXPECT_EQ(kept(0.65f), (Ids{1, 3}));
  EXPECT_EQ(kept(0.85f), (Ids{1, 2, 3}));
  EXPECT_EQ(kept(0.95f), (Ids{0, 1, 2, 3}));
  EXPECT_EQ(kept(0.01f), (Ids{1}));  // never fewer than one token
}

TEST(GreedySearch, FollowsTheMostProbableTokenAndStreamsIt) {
  ToyDecoder toy(1, 6, hand_tree);
  std::vector<std::pair<int64_t, int64_t>> streamed;
  auto out = infer::greedy_search(toy, {{kPad}}, marian_like_rules(10),
                                  [&](int64_t s, int64_t t) { streamed.emplace_back(s, t); });
  EXPECT_EQ(out, (std::vector<Ids>{{kA, kC, kEos}}));
  EXPECT_EQ(streamed, (std::vector<std::pair<int64_t, int64_t>>{{0, kA}, {0, kC}, {0, kEos}}));
}

TEST(GreedySearch, NeverGeneratesASuppressedToken) {
  // Pad is the most probable token everywhere; EOS second after two tokens.
  auto pad_first = [](const Ids& p) {
    return p.size() < 3 ? logits_of({.5, .1, .3, .1, 0, 0}) : logits_of({.5, .4, .05, .05, 0, 0});
  };
  ToyDecoder plain(1, 6, pad_first), suppressed(1, 6, pad_first);
  GenerationRules rules = marian_like_rules(5);
  rules.suppressed_ids.clear();
  EXPECT_EQ(infer::greedy_search(plain, {{kPad}}, rules), (std::vector<Ids>{{kPad, kPad, kPad, kPad, kPad}}));
  EXPECT_EQ(infer::greedy_search(suppressed, {{kPad}}, marian_like_rules(5)),
            (std::vector<Ids>{{kA, kA, kEos}}));
}

TEST(GreedySearch, ForcesEosAtTheLengthLimit) {
  auto never_eos = [](const Ids&) { return logits_of({0, .01, .5, .29, .1, .1}); };
  ToyDecoder plain(1, 6, never_eos), forced(1, 6, never_eos);
  GenerationRules rules = marian_like_rules(4);
  EXPECT_EQ(infer::greedy_search(plain, {{kPad}}, rules), (std::vector<Ids>{{kA, kA, kA, kA}}));
  rules.forced_eos_id = kEos;
  EXPECT_EQ(infer::greedy_search(forced, {{kPad}}, rules), (std::vector<Ids>{{kA, kA, kA, kEos}}));
}

TEST(GreedySearch, RepetitionPenaltyCoversPromptAndGeneratedTokens) {
  // Constant logits: A 2.0, B 1.5, C 0.5. With penalty 1.5 a used A scores 1.33 and a used B 1.0.
  auto constant = [](const Ids&) { return std::vector<float>{-9.0f, -9.0f, 2.0f, 1.5f, 0.5f}; };
  GenerationRules rules;
  rules.max_new_tokens = 4;
  rules.repetition_penalty = 1.5f;
  ToyDecoder a(1, 5, constant), b(1, 5, constant);
  EXPECT_EQ(infer::greedy_search(a, {{kPad}}, rules), (std::vector<Ids>{{kA, kB, kA, kA}}));
  // A in the prompt is penalised from the first step on.
  EXPECT_EQ(infer::greedy_search(b, {{kPad, kA}}, rules), (std::vector<Ids>{{kB, kA, kA, kA}}));
}

TEST(GreedySearch, BatchOfDifferentPromptsEqualsOneByOneAndSkipsFinishedRows) {
  const int64_t vocab = 7;
  auto tree = [&](const Ids& p) { return hashed_logits(p, vocab, 11); };
  const std::vector<Ids> prompts = {{kPad}, {kPad, 3, 4}, {5, 2}, {kPad, 6, 6, 2, 3}, {4}};
  GenerationRules rules = marian_like_rules(9);
  ToyDecoder batch(int64_t(prompts.size()), vocab, tree);
  const auto together = infer::greedy_search(batch, prompts, rules);
  int64_t expected_rows = 0;
  bool some_stopped_early = false;
  for (size_t s = 0; s < prompts.size(); ++s) {
    ToyDecoder alone(1, vocab, tree);
    EXPECT_EQ(infer::greedy_search(alone, {prompts[s]}, rules)[0], together[s]) << "source " << s;
    // The default prefill feeds each prompt token once; then each generated token but the last.
    expected_rows += int64_t(prompts[s].size() + together[s].size()) - 1;
    some_stopped_early |= together[s].size() < 9;
  }
  EXPECT_TRUE(some_stopped_early) << "the tree should end some rows before the limit";
  EXPECT_EQ(batch.rows_stepped(), expected_rows);
}

TEST(GreedySearch, RejectsBadInput) {
  ToyDecoder toy(1, 6, hand_tree);
  EXPECT_NE(
      error_of([&] { infer::greedy_search(toy, {{}}, marian_like_rules(3)); }).find("prompt 0 is empty"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              infer::greedy_search(toy, {{kPad, 9}}, marian_like_rules(3));
            }).find("token id 9"),
            std::string::npos);
  GenerationRules rules = marian_like_rules(3);
  rules.suppressed_ids = {6};
  EXPECT_NE(error_of([&] { infer::greedy_search(toy, {{kPad}}, rules); }).find("suppressed_ids"),
            std::string::npos);
  rules = marian_like_rules(0);
  EXPECT_NE(error_of([&] { infer::greedy_search(toy, {{kPad}}, rules); }).find("max_new_tokens"),
            std::string::npos);
}

TEST(Sampling, SameSeedSameTokensOtherSeedOtherTokens) {
  const int64_t vocab = 6;
  auto flat = [&](const Ids& p) { return hashed_logits(p, vocab, 5); };
  std::vector<Ids> prompts(4, Ids{kPad});
  GenerationRules rules;
  rules.max_new_tokens = 12;
  SamplingOptions options;
  options.seed = 42;
  ToyDecoder a(4, vocab, flat), b(4, vocab, flat), c(4, vocab, flat);
  const auto first = infer::sample(a, prompts, rules, options);
  EXPECT_EQ(infer::sample(b, prompts, rules, options), first);
  options.seed = 43;
  EXPECT_NE(infer::sample(c, prompts, rules, options), first);
}

TEST(Sampling, TopKOneIsGreedy) {
  const int64_t vocab = 7;
  auto tree = [&](const Ids& p) { return hashed_logits(p, vocab, 3); };
  const std::vector<Ids> prompts = {{kPad}, {kPad, 2}, {3, 3, 4}};
  GenerationRules rules = marian_like_rules(10);
  rules.repetition_penalty = 1.3f;
  SamplingOptions options;
  options.top_k = 1;
  options.temperature = 0.7f;
  ToyDecoder a(3, vocab, tree), b(3, vocab, tree);
  EXPECT_EQ(infer::sample(a, prompts, rules, options), infer::greedy_search(b, prompts, rules));
}

TEST(Sampling, TopPDrawsFromTheRenormalisedNucleus) {
  SamplingOptions options;
  options.top_p = 0.65f;  // keeps .4 and .3 (see TopPKeepsTheSmallestBestFirstSetReachingP)
  options.seed = 7;
  const auto counts = draw_counts(logits_of({.1, .4, .2, .3}), 20000, options);
  // One degree of freedom: 15.1 is the 0.9999 quantile.
  EXPECT_LT(chi_square(counts, {0, .4 / .7, 0, .3 / .7}), 15.1);
}

TEST(Sampling, TemperatureSharpensAndFlattens) {
  const std::vector<double> p = {.1, .2, .3, .4};
  for (float temperature : {0.5f, 2.0f}) {
    SamplingOptions options;
    options.temperature = temperature;
    options.seed = 99;
    std::vector<double> want;  // softmax(log p / T) = p^(1/T) renormalised
    double sum = 0;
    for (double x : p) sum += std::pow(x, 1.0 / temperature);
    for (double x : p) want.push_back(std::pow(x, 1.0 / temperature) / sum);
    // Three degrees of freedom: 21.1 is the 0.9999 quantile.
    EXPECT_LT(chi_square(draw_counts(logits_of(p), 20000, options), want), 21.1) << "T=" << temperature;
  }
}

TEST(Sampling, UnwarpedDrawsFollowTheSoftmax) {
  SamplingOptions options;
  options.seed = 1234;
  EXPECT_LT(chi_square(draw_counts(logits_of({.05, .15, .5, .3}), 20000, options), {.05, .15, .5, .3}), 21.1);
}

}  // namespace
}  // namespace tfm::test
