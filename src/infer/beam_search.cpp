#include "infer/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "infer/sampling.h"

namespace tfm::infer {

namespace {

constexpr float kExcluded = -1.0e9f;  // what HF adds to a score to take it out of a top-k

struct Beam {
  std::vector<int64_t> tokens;  // generated so far
  float score = 0;              // sum of processed log-probs
};

struct Slot {  // one of a source's num_beams finished hypotheses
  std::vector<int64_t> tokens;
  float score = kExcluded;  // length-normalised
  bool finished = false;
};

struct Candidate {
  float score;   // parent beam's score + the token's log-prob
  int64_t beam;  // parent beam
  int64_t token;
  bool stops;  // EOS, or max_new_tokens reached
};

struct Source {
  std::vector<Beam> running;
  std::vector<Slot> slots;      // best first
  bool improvable = true;       // HF is_early_stop_heuristic_unsatisfied
  std::vector<int64_t> parent;  // per new running beam: which old beam it continues
};

// log_softmax of one row, in place.
void log_softmax(std::span<float> row) {
  const double lse = log_sum_exp(row);
  for (float& x : row) x = float(double(x) - lse);
}

class BeamSearch {
 public:
  BeamSearch(DecoderStep& decoder, const std::vector<std::vector<int64_t>>& prompts,
             const GenerationRules& rules, const BeamOptions& options)
      : decoder_(decoder),
        prompts_(prompts),
        rules_(rules),
        k_(options.num_beams),
        length_penalty_(double(options.length_penalty)),
        early_stopping_(options.early_stopping),
        vocab_(decoder.vocab_size()) {}

  std::vector<std::vector<Hypothesis>> run() {
    const size_t n = prompts_.size();
    sources_.resize(n);
    for (Source& s : sources_) {
      s.running.resize(size_t(k_));
      for (int64_t b = 1; b < k_; ++b) s.running[size_t(b)].score = kExcluded;  // all beams start equal
      s.slots.resize(size_t(k_));
    }
    std::vector<int64_t> live(n);
    std::iota(live.begin(), live.end(), 0);
    // The first logits come from one row per source; its beams are all that row (row_of below).
    Tensor logits = decoder_.prefill(live, prompts_);
    for (int64_t generated = 0; !live.empty(); ++generated) {
      const bool first = generated == 0;
      const float* data =
          checked_logits(logits, first ? int64_t(live.size()) : int64_t(live.size()) * k_, vocab_);
      auto row_of = [&](size_t position, int64_t beam) {
        return first ? int64_t(position) : int64_t(position) * k_ + beam;
      };
      std::vector<int64_t> still_live, parents, tokens;
      for (size_t p = 0; p < live.size(); ++p) {
        Source& s = sources_[size_t(live[p])];
        std::vector<std::span<const float>> rows;
        for (int64_t b = 0; b < k_; ++b) rows.emplace_back(data + row_of(p, b) * vocab_, size_t(vocab_));
        if (!advance(s, live[p], rows, generated + 1)) continue;
        still_live.push_back(live[p]);
        for (int64_t b = 0; b < k_; ++b) {
          parents.push_back(row_of(p, s.parent[size_t(b)]));
          tokens.push_back(s.running[size_t(b)].tokens.back());
        }
      }
      live = std::move(still_live);
      if (live.empty()) break;
      decoder_.reorder(parents);
      std::vector<int64_t> rows(parents.size());
      std::iota(rows.begin(), rows.end(), 0);
      logits = decoder_.step(rows, tokens);
    }
    std::vector<std::vector<Hypothesis>> out(n);
    for (size_t i = 0; i < n; ++i)  // the slots are kept best first
      for (const Slot& slot : sources_[i].slots)
        if (slot.finished || out[i].empty()) out[i].push_back({slot.tokens, slot.score});
    return out;
  }

 private:
  // One step of source `id` whose beams' raw logits are `rows`; afterwards each beam has `generated`
  // tokens. Returns whether the source goes on.
  bool advance(Source& s, int64_t id, const std::vector<std::span<const float>>& rows, int64_t generated) {
    const std::vector<Candidate> candidates = best_candidates(s, id, rows, generated);
    const bool at_limit = generated == rules_.max_new_tokens;

    // The next running beams: the best num_beams candidates once finished ones are excluded.
    std::vector<float> running_scores;
    for (const Candidate& c : candidates) running_scores.push_back(c.score + (c.stops ? kExcluded : 0.0f));
    std::vector<Beam> next;
    s.parent.clear();
    for (int64_t j : top_indices(running_scores, size_t(k_))) {
      const Candidate& c = candidates[size_t(j)];
      Beam beam{s.running[size_t(c.beam)].tokens, running_scores[size_t(j)]};
      beam.tokens.push_back(c.token);
      next.push_back(std::move(beam));
      s.parent.push_back(c.beam);
    }

    offer_finished(s, candidates, generated);
    s.running = std::move(next);
    update_improvable(s, generated);
    const bool full = std::all_of(s.slots.begin(), s.slots.end(), [](const Slot& x) { return x.finished; });
    return s.improvable && !(early_stopping_ == EarlyStopping::kWhenFull && full) && !at_limit;
  }

  // The best 2 * num_beams continuations of the source's beams.
  std::vector<Candidate> best_candidates(const Source& s, int64_t id,
                                         const std::vector<std::span<const float>>& rows, int64_t generated) {
    const size_t keep = size_t(2 * k_);
    std::vector<float> scores;  // [beam * vocab + token], the flat order HF's top-k runs over
    scores.reserve(size_t(k_ * vocab_));
    std::vector<float> row;
    for (int64_t b = 0; b < k_; ++b) {
      const Beam& beam = s.running[size_t(b)];
      row.assign(rows[size_t(b)].begin(), rows[size_t(b)].end());
      log_softmax(row);
      std::vector<int64_t> sequence = prompts_[size_t(id)];
      sequence.insert(sequence.end(), beam.tokens.begin(), beam.tokens.end());
      apply_rules(row, sequence, generated - 1, rules_);
      for (float lp : row) scores.push_back(beam.score + lp);
    }
    std::vector<Candidate> out;
    for (int64_t flat : top_indices(scores, keep)) {
      const int64_t token = flat % vocab_;
      const bool stops = (rules_.eos_id && token == *rules_.eos_id) || generated == rules_.max_new_tokens;
      out.push_back({scores[size_t(flat)], flat / vocab_, token, stops});
    }
    if (out[0].score == -std::numeric_limits<float>::infinity())
      fail("source {}, token {}: every token is masked by the generation rules", id, generated - 1);
    return out;
  }

  // HF `_update_finished_beams`: finished candidates among the first num_beams compete with the
  // finished slots; the best num_beams entries stay.
  void offer_finished(Source& s, const std::vector<Candidate>& candidates, int64_t generated) {
    const bool full = std::all_of(s.slots.begin(), s.slots.end(), [](const Slot& x) { return x.finished; });
    const float norm = float(std::pow(double(generated), length_penalty_));
    std::vector<float> merged;
    for (const Slot& slot : s.slots) merged.push_back(slot.score);
    for (size_t j = 0; j < candidates.size(); ++j) {
      float score = candidates[j].score / norm;
      score += (full && early_stopping_ == EarlyStopping::kWhenFull) ? kExcluded : 0.0f;
      score += s.improvable ? 0.0f : kExcluded;
      const bool offered = int64_t(j) < k_ && candidates[j].stops;
      score += offered ? 0.0f : kExcluded;
      merged.push_back(score);
    }
    std::vector<Slot> slots;
    for (int64_t m : top_indices(merged, size_t(k_))) {
      if (m < k_) {
        slots.push_back(s.slots[size_t(m)]);
        continue;
      }
      const size_t j = size_t(m - k_);
      const Candidate& c = candidates[j];
      Slot slot{s.running[size_t(c.beam)].tokens, merged[size_t(m)], int64_t(j) < k_ && c.stops};
      slot.tokens.push_back(c.token);
      slots.push_back(std::move(slot));
    }
    s.slots = std::move(slots);
  }

  // HF `_check_early_stop_heuristic`, after the step that brought the beams to `generated` tokens.
  void update_improvable(Source& s, int64_t generated) {
    const bool never = early_stopping_ == EarlyStopping::kNever && length_penalty_ > 0;
    const double best_length = double(never ? rules_.max_new_tokens : generated);
    const float best_possible = s.running[0].score / float(std::pow(best_length, length_penalty_));
    float worst = s.slots[0].score;
    for (const Slot& slot : s.slots) worst = std::min(worst, slot.score);
    bool can_improve = false;
    for (const Slot& slot : s.slots) can_improve |= best_possible > (slot.finished ? worst : kExcluded);
    s.improvable = s.improvable && can_improve;
  }

  DecoderStep& decoder_;
  const std::vector<std::vector<int64_t>>& prompts_;
  const GenerationRules& rules_;
  const int64_t k_;
  const double length_penalty_;
  const EarlyStopping early_stopping_;
  const int64_t vocab_;
  std::vector<Source> sources_;
};

}  // namespace

std::vector<std::vector<Hypothesis>> beam_search_all(DecoderStep& decoder,
                                                     const std::vector<std::vector<int64_t>>& prompts,
                                                     const GenerationRules& rules,
                                                     const BeamOptions& options) {
  const int64_t vocab = decoder.vocab_size();
  validate_prompts(prompts, vocab);
  validate(rules, vocab);
  if (options.num_beams < 1) fail("num_beams must be at least 1, got {}", options.num_beams);
  return BeamSearch(decoder, prompts, rules, options).run();
}

std::vector<Hypothesis> beam_search(DecoderStep& decoder, const std::vector<std::vector<int64_t>>& prompts,
                                    const GenerationRules& rules, const BeamOptions& options) {
  std::vector<Hypothesis> best;
  for (std::vector<Hypothesis>& h : beam_search_all(decoder, prompts, rules, options))
    best.push_back(std::move(h.front()));
  return best;
}

}  // namespace tfm::infer
