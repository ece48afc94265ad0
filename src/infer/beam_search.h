// Beam search as Hugging Face `generate` does it (transformers 5.x, generation/utils.py `_beam_search`,
// the vectorised version of 4.50+), for a batch of sources, each with its own beams:
//  - each step, every running beam's logits go through log_softmax and then the generation rules (so a
//    suppressed token's mass is not renormalised away); a candidate's score is its beam's running sum
//    plus the token's log-probability;
//  - the best 2 * num_beams candidates of a source (ties: lower beam, then lower token id first) are
//    kept. A candidate "finishes" if its token is EOS or it reaches max_new_tokens. Finished
//    candidates among the first num_beams of them are offered to the source's num_beams finished
//    slots with score sum / (generated tokens, EOS included) ^ length_penalty; the best num_beams of
//    the unfinished candidates run on;
//  - a source is done when its slots are full and early_stopping is kWhenFull, when no running beam
//    can beat its worst finished slot any more (see EarlyStopping), or at max_new_tokens. A done
//    source is not stepped again; its result cannot change any more, so this equals HF, which steps
//    the whole batch until every source is done.
// HF marks excluded entries by adding -1e9 (initial beams 1..k-1, finished beams, blocked slots), and
// so does this file, so that even degenerate cases (tiny vocabularies, everything masked but one
// token) match.
#pragma once

#include <cstdint>
#include <vector>

#include "infer/decoder_step.h"
#include "infer/logits_processors.h"

namespace tfm::infer {

// When a source stops looking for better hypotheses (HF `early_stopping`).
enum class EarlyStopping {
  // HF False (the default): when the best running beam, normalised by the current length, scores
  // no better than the worst of num_beams finished hypotheses.
  kHeuristic,
  // HF True: as soon as num_beams hypotheses are finished (or the heuristic above says so).
  kWhenFull,
  // HF "never": as kHeuristic, but with length_penalty > 0 the running beam is normalised by the
  // longest length still possible (max_new_tokens), so stopping happens only when no beam can win.
  kNever,
};

struct BeamOptions {
  int64_t num_beams = 4;
  float length_penalty = 1.0f;  // exponent of the length that divides a finished hypothesis' sum
  EarlyStopping early_stopping = EarlyStopping::kHeuristic;
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // generated tokens, ending with EOS unless max_new_tokens cut them
  float score = 0;              // HF sequences_scores: sum of log-probs / tokens.size() ^ length_penalty
};

// The best hypothesis per source (HF num_return_sequences = 1). `prompts` as for greedy_search.
std::vector<Hypothesis> beam_search(DecoderStep& decoder, const std::vector<std::vector<int64_t>>& prompts,
                                    const GenerationRules& rules, const BeamOptions& options);

// The best hypothesis and every other finished one per source (at most num_beams), best first: HF
// num_return_sequences = num_beams.
std::vector<std::vector<Hypothesis>> beam_search_all(DecoderStep& decoder,
                                                     const std::vector<std::vector<int64_t>>& prompts,
                                                     const GenerationRules& rules,
                                                     const BeamOptions& options);

}  // namespace tfm::infer
