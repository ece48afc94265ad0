// Text generation for one request through the scheduler: n rows continuing one prompt, each token chosen
// as infer/sampling.h chooses it (the same rules, argmax, warpers and counter-based draws: row i draws
// token t with uniform_at(seed, i << 32 | t)), so a greedy or seeded completion equals `tfm generate`'s.
// Adds what OpenAI's API asks beyond it: presence and frequency penalties, stop strings, log-probabilities,
// and text deltas for streaming.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infer/logits_processors.h"
#include "serve/scheduler.h"
#include "tokenize/tokenizer.h"

namespace tfm::serve {

struct CompletionSpec {
  std::vector<int64_t> prompt;                     // non-empty, inside the vocabulary
  int64_t n = 1;                                   // rows continuing the prompt
  infer::GenerationRules rules;                    // max_new_tokens, eos_id, repetition penalty
  std::optional<infer::SamplingOptions> sampling;  // none: greedy
  // OpenAI's penalties (its API reference's formula): logit[j] -= frequency * count[j] + presence * (count[j]
  // > 0), count over the tokens generated so far; applied before the rules.
  float presence_penalty = 0, frequency_penalty = 0;
  std::vector<std::string> stop;    // the text ends before the first occurrence of any
  std::optional<int64_t> logprobs;  // the chosen token's log-probability and this many best alternatives
};

// A token's log-probability under the model (log_softmax of the raw logits) and the best alternatives.
struct TokenLogprob {
  int64_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int64_t, float>> top;
};

struct CompletionChoice {
  std::vector<int64_t> tokens;         // generated (EOS included when generated)
  std::string text;                    // detokenized, cut before a stop string
  std::string finish_reason;           // "stop" (EOS or a stop string) or "length"
  std::vector<TokenLogprob> logprobs;  // per token of `text` (with spec.logprobs)
};

// Called after every token of a row with the text that became final with it (whole UTF-8 characters,
// nothing a stop string could still remove; often empty) and the log-probabilities of the tokens since the
// last call; returning false cancels the request (Cancelled).
using TextCallback =
    std::function<bool(int64_t row, const std::string& delta, std::span<const TokenLogprob> logprobs)>;

// Admits the request's sequence (spec.n rows of its prompt and max_new_tokens): what may wait, and what
// throws QueueFull, OverBudget or Cancelled (serve/scheduler.h), before any answer is sent.
std::unique_ptr<Sequence> admit(Scheduler& scheduler, const CompletionSpec& spec,
                                const std::function<bool()>& cancelled = {});

// Generates the n choices through the admitted `sequence`.
std::vector<CompletionChoice> complete(Sequence& sequence, const tokenize::Tokenizer& tokenizer,
                                       const CompletionSpec& spec, const TextCallback& on_text = {});

}  // namespace tfm::serve
