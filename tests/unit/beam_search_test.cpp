// Beam search on toy decoders: hand-worked trees, exhaustive enumeration, batching, and the Marian
// fixture's Hugging Face beam score.
#include "infer/beam_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "infer/sampling.h"
#include "io/safetensors.h"
#include "test_support.h"
#include "toy_decoder.h"

namespace tfm::test {
namespace {

using infer::BeamOptions;
using infer::EarlyStopping;
using infer::GenerationRules;
using Ids = std::vector<int64_t>;

BeamOptions beams(int64_t num_beams, float length_penalty, EarlyStopping early_stopping) {
  BeamOptions o;
  o.num_beams = num_beams;
  o.length_penalty = length_penalty;
  o.early_stopping = early_stopping;
  return o;
}

TEST(BeamSearch, FindsTheBetterSequenceGreedyMisses) {
  ToyDecoder greedy_toy(1, 6, hand_tree), beam_toy(1, 6, hand_tree);
  EXPECT_EQ(infer::greedy_search(greedy_toy, {{kPad}}, marian_like_rules(10))[0], (Ids{kA, kC, kEos}));
  const auto best = infer::beam_search(beam_toy, {{kPad}}, marian_like_rules(10),
                                       beams(2, 1.0f, EarlyStopping::kHeuristic))[0];
  EXPECT_EQ(best.tokens, (Ids{kB, kEos}));
  EXPECT_NEAR(best.score, std::log(.4 * .9) / 2, 1e-6);
}

TEST(BeamSearch, LengthPenaltyChangesTheWinner) {
  // After the start: EOS .3, A .55, B .15. After A: A .5, EOS .25, B .2, C .05. After B: EOS .9.
  // Two tokens at most. Sums: [EOS] log .3, [A A] log .275, [A EOS] log .1375.
  auto tree = [](const Ids& p) {
    if (p.size() == 1) return logits_of({0, .3, .55, .15, 0, 0});
    if (p[1] == kA) return logits_of({0, .25, .5, .2, .05, 0});
    return logits_of({0, .9, .05, .05, 0, 0});
  };
  ToyDecoder no_penalty(1, 6, tree), linear(1, 6, tree);
  const auto short_wins = infer::beam_search(no_penalty, {{kPad}}, marian_like_rules(2),
                                             beams(2, 0.0f, EarlyStopping::kHeuristic))[0];
  EXPECT_EQ(short_wins.tokens, (Ids{kEos}));
  EXPECT_NEAR(short_wins.score, std::log(.3), 1e-6);
  const auto long_wins = infer::beam_search(linear, {{kPad}}, marian_like_rules(2),
                                            beams(2, 1.0f, EarlyStopping::kHeuristic))[0];
  EXPECT_EQ(long_wins.tokens, (Ids{kA, kA}));  // cut by the limit, no EOS
  EXPECT_NEAR(long_wins.score, std::log(.55 * .5) / 2, 1e-6);
}

// After the start: A .6, EOS .4. After A: A .55, EOS .45. After A A: EOS .9, A .09, B .01.
// After A A A: EOS .99. Two beams, length penalty 1, up to 6 tokens.
//  step 1: [EOS] finishes (-0.916).  step 2: [A EOS] finishes (log .27 / 2 = -0.655): two finished.
//  step 3: [A A EOS] finishes (log .297 / 3 = -0.405); the best running beam, A A A (sum -3.517),
//          could reach -3.517 / 3 = -1.17 at the current length, -3.517 / 6 = -0.59 at the limit.
//  step 4: [A A A EOS] (-0.882) does not get in; A A A A (sum -8.1) cannot reach -0.655 even at 6.
std::vector<float> stopping_tree(const Ids& p) {
  const Ids after(p.begin() + 1, p.end());
  if (after.empty()) return logits_of({0, .4, .6, 0, 0, 0});
  if (after == Ids{kA}) return logits_of({0, .45, .55, 0, 0, 0});
  if (after == Ids{kA, kA}) return logits_of({0, .9, .09, .01, 0, 0});
  return logits_of({0, .99, .01, 0, 0, 0});
}

TEST(BeamSearch, EarlyStoppingTrueStopsOnceNumBeamsAreFinished) {
  ToyDecoder toy(1, 6, stopping_tree);
  const auto best =
      infer::beam_search(toy, {{kPad}}, marian_like_rules(6), beams(2, 1.0f, EarlyStopping::kWhenFull))[0];
  EXPECT_EQ(best.tokens, (Ids{kA, kEos}));
  EXPECT_NEAR(best.score, std::log(.6 * .45) / 2, 1e-6);
  EXPECT_EQ(toy.rows_per_call, (Ids{1, 2}));  // the start token, then one step of both beams
}

TEST(BeamSearch, EarlyStoppingFalseStopsWhenTheBestRunningBeamCannotWinAtTheCurrentLength) {
  ToyDecoder toy(1, 6, stopping_tree);
  const auto best =
      infer::beam_search(toy, {{kPad}}, marian_like_rules(6), beams(2, 1.0f, EarlyStopping::kHeuristic))[0];
  EXPECT_EQ(best.tokens, (Ids{kA, kA, kEos}));
  EXPECT_NEAR(best.score, std::log(.6 * .55 * .9) / 3, 1e-6);
  EXPECT_EQ(toy.rows_per_call, (Ids{1, 2, 2}));
}

TEST(BeamSearch, EarlyStoppingNeverJudgesRunningBeamsAtTheLongestLength) {
  ToyDecoder toy(1, 6, stopping_tree);
  const auto best =
      infer::beam_search(toy, {{kPad}}, marian_like_rules(6), beams(2, 1.0f, EarlyStopping::kNever))[0];
  EXPECT_EQ(best.tokens, (Ids{kA, kA, kEos}));
  EXPECT_EQ(toy.rows_per_call, (Ids{1, 2, 2, 2}));  // one step more than with kHeuristic
}

TEST(BeamSearch, ForcedEosScoresZeroAndPadIsNeverChosen) {
  // Pad is the most probable token everywhere; EOS is improbable.
  auto tree = [](const Ids&) { return logits_of({.6, .01, .25, .09, .05, 0}); };
  GenerationRules rules = marian_like_rules(3);
  rules.forced_eos_id = kEos;
  ToyDecoder toy(1, 6, tree);
  const auto best = infer::beam_search(toy, {{kPad}}, rules, beams(3, 1.0f, EarlyStopping::kHeuristic))[0];
  EXPECT_EQ(best.tokens, (Ids{kA, kA, kEos}));
  // Pad's mass is not renormalised away (HF masks after log_softmax); the forced EOS adds log 1 = 0.
  EXPECT_NEAR(best.score, 2 * std::log(.25) / 3, 1e-6);
}

// All sequences of up to `max_new` tokens (ending at EOS or at the limit), scored as HF scores a
// finished hypothesis; returns the best. Written independently of the library's rules.
struct Best {
  Ids tokens;
  double score = -std::numeric_limits<double>::infinity();
};
void enumerate(const ToyDecoder::Logits& tree, Ids& prefix, double sum, int64_t max_new, bool forced_eos,
               double length_penalty, Best& best) {
  const int64_t generated = int64_t(prefix.size()) - 1;
  std::vector<float> z = tree(prefix);
  double lse = 0, max = z[0];
  for (float x : z) max = std::max(max, double(x));
  for (float x : z) lse += std::exp(double(x) - max);
  lse = max + std::log(lse);
  for (int64_t t = 0; t < int64_t(z.size()); ++t) {
    if (t == kPad) continue;  // suppressed
    const bool last = generated + 1 == max_new;
    double lp = double(z[size_t(t)]) - lse;
    if (last && forced_eos) {
      if (t != kEos) continue;
      lp = 0;
    }
    prefix.push_back(t);
    if (t == kEos || last) {
      const double score = (sum + lp) / std::pow(double(generated + 1), length_penalty);
      if (score > best.score) best = {Ids(prefix.begin() + 1, prefix.end()), score};
    } else {
      enumerate(tree, prefix, sum + lp, max_new, forced_eos, length_penalty, best);
    }
    prefix.pop_back();
  }
}

TEST(BeamSearch, WithEnoughBeamsAndNoEarlyStopItFindsTheExhaustiveOptimum) {
  // 3 words, up to 3 tokens: never more than 9 running prefixes and 36 finite candidates per step,
  // so 40 beams keep every one of them and "never" stops only when nothing can win any more.
  const int64_t vocab = 5, max_new = 3;
  int checked = 0;
  for (uint64_t salt = 0; salt < 12; ++salt) {
    ToyDecoder::Logits tree = [&, salt](const Ids& p) { return hashed_logits(p, vocab, salt); };
    for (bool forced : {false, true}) {
      for (float lp : {-1.0f, 0.0f, 1.0f, 2.0f}) {
        GenerationRules rules = marian_like_rules(max_new);
        if (forced) rules.forced_eos_id = kEos;
        ToyDecoder toy(1, vocab, tree);
        const auto got = infer::beam_search(toy, {{kPad}}, rules, beams(40, lp, EarlyStopping::kNever))[0];
        Best want;
        Ids prefix = {kPad};
        enumerate(tree, prefix, 0, max_new, forced, lp, want);
        EXPECT_EQ(got.tokens, want.tokens) << "salt " << salt << " forced " << forced << " lp " << lp;
        EXPECT_NEAR(got.score, want.score, 1e-5) << "salt " << salt << " forced " << forced << " lp " << lp;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 96);
}

TEST(BeamSearch, BatchOfDifferentPromptsEqualsOneByOneAndFinishedSourcesCostNothing) {
  const int64_t vocab = 7;
  auto tree = [&](const Ids& p) { return hashed_logits(p, vocab, 21); };
  const std::vector<Ids> prompts = {{kPad}, {kPad, 3, 4}, {5, 2}, {kPad, 6, 6, 2, 3}, {4}, {kPad, 2}};
  for (EarlyStopping es : {EarlyStopping::kHeuristic, EarlyStopping::kWhenFull, EarlyStopping::kNever}) {
    GenerationRules rules = marian_like_rules(8);
    rules.forced_eos_id = kEos;
    rules.repetition_penalty = 1.2f;
    const BeamOptions options = beams(3, 0.8f, es);
    ToyDecoder batch(int64_t(prompts.size()), vocab, tree);
    const auto together = infer::beam_search(batch, prompts, rules, options);
    int64_t rows_alone = 0;
    std::set<size_t> lengths;
    for (size_t s = 0; s < prompts.size(); ++s) {
      ToyDecoder alone(1, vocab, tree);
      const auto one = infer::beam_search(alone, {prompts[s]}, rules, options)[0];
      EXPECT_EQ(together[s].tokens, one.tokens) << "source " << s;
      EXPECT_EQ(together[s].score, one.score) << "source " << s;
      rows_alone += alone.rows_stepped();
      lengths.insert(alone.rows_per_call.size() - prompts[s].size());  // steps after the prompt
    }
    EXPECT_GT(lengths.size(), 1u) << "sources should stop at different steps";
    EXPECT_EQ(batch.rows_stepped(), rows_alone);
  }
}

TEST(BeamSearch, MatchesTheMarianFixtureBeamScore) {
  // The fixture's beam search (4 beams, length penalty 1, early_stopping True, pad suppressed, EOS
  // forced at 12 new tokens) chose the greedy path, whose raw logits greedy_step_logits holds. A toy
  // whose logits depend only on the position reproduces that path, so its score must be HF's.
  const auto ref = io::SafetensorsFile::open(fixtures_root() + "/marian/reference.safetensors");
  const Tensor logits = ref.get_f32("greedy_step_logits");  // [1, 12, 512]
  const Tensor beam_ids = ref.get_i64("beam_ids");          // [1, 13], starting with the decoder start
  const float beam_score = ref.get_f32("beam_score").item();
  const int64_t steps = logits.size(1), vocab = logits.size(2);
  auto by_position = [&](const Ids& p) {
    const float* row = logits.f32() + (int64_t(p.size()) - 1) * vocab;
    return std::vector<float>(row, row + vocab);
  };
  GenerationRules rules;
  rules.max_new_tokens = steps;
  rules.eos_id = rules.forced_eos_id = 2;
  rules.suppressed_ids = {1};  // pad
  ToyDecoder toy(1, vocab, by_position);
  const auto best = infer::beam_search(toy, {{1}}, rules, beams(4, 1.0f, EarlyStopping::kWhenFull))[0];
  const Ids want(beam_ids.data<int64_t>() + 1, beam_ids.data<int64_t>() + beam_ids.numel());
  EXPECT_EQ(best.tokens, want);
  // Normalised by the 12 generated tokens (EOS included, start token not): -2.237610. Masking pad
  // before the softmax would give -2.237166, dividing by 13 -2.065.
  EXPECT_NEAR(best.score, beam_score, 2e-6);
}

TEST(BeamSearch, RejectsBadOptions) {
  ToyDecoder toy(1, 6, hand_tree);
  EXPECT_NE(error_of([&] {
              infer::beam_search(toy, {{kPad}}, marian_like_rules(3),
                                 beams(0, 1.0f, EarlyStopping::kHeuristic));
            }).find("num_beams"),
            std::string::npos);
}

}  // namespace
}  // namespace tfm::test
