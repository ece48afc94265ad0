// Token-by-token generation over a batch of sources: greedy search and sampling, one loop. Each row
// stops at its EOS or after max_new_tokens; a stopped row is not stepped again. Every row behaves as
// if decoded alone (HF generate with batch size 1), whatever the other rows' prompt lengths.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "infer/decoder_step.h"
#include "infer/logits_processors.h"

namespace tfm::infer {

// Called with (source index, token id) as soon as a token is chosen, for streaming output.
using TokenCallback = std::function<void(int64_t source, int64_t token)>;

// `prompts[s]`: what row s of `decoder` is fed first (its decoder start token, or an LM prompt).
// Returns per source the generated tokens, ending with EOS when one was generated.
// Greedy: after the rules, the most probable token, the first on ties (torch.argmax).
std::vector<std::vector<int64_t>> greedy_search(DecoderStep& decoder,
                                                const std::vector<std::vector<int64_t>>& prompts,
                                                const GenerationRules& rules,
                                                const TokenCallback& on_token = {});

// Sampling: after the rules and the warpers (temperature, top-k, top-p), a draw from the softmax.
// Token t of source s uses the counter-based uniform_at(seed, s << 32 | t), so a (seed, source, step)
// always gives the same draw, whatever else is in the batch.
std::vector<std::vector<int64_t>> sample(DecoderStep& decoder,
                                         const std::vector<std::vector<int64_t>>& prompts,
                                         const GenerationRules& rules, const SamplingOptions& options,
                                         const TokenCallback& on_token = {});

// Checks what every search needs of its prompts: at least one, none empty, ids inside the vocabulary.
void validate_prompts(const std::vector<std::vector<int64_t>>& prompts, int64_t vocab);

}  // namespace tfm::infer
