// Text continuation with a decoder-only model: the prompts are fed in one batched pass, then greedy
// search or sampling runs over the KV cache (infer/model_decoder.h).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "infer/logits_processors.h"
#include "infer/sampling.h"
#include "models/transformer.h"

namespace tfm::infer {

struct GenerateOptions {
  GenerationRules rules;                    // max_new_tokens, eos_id, repetition penalty, ...
  std::optional<SamplingOptions> sampling;  // none: greedy
};

// Continues every prompt (token ids, none empty). A prompt longer than the model's context (max_len)
// is an Error. Generation stops where the context is full: a row holds its prompt and every generated
// token but the last, so at most max_len - longest prompt + 1 tokens are generated (a documented
// truncation of max_new_tokens). Returns per prompt the generated tokens (EOS last when generated);
// on_token sees each as soon as it is chosen.
std::vector<std::vector<int64_t>> generate(const Transformer& model,
                                           const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options,
                                           const TokenCallback& on_token = {});

}  // namespace tfm::infer
