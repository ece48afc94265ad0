// Perplexity of a decoder-only language model on a text, as the issue defines it (and as Hugging Face's
// strided perplexity recipe computes it): the text becomes one token stream, each line's ids followed by
// the end-of-text id; windows of `context` tokens start every `stride` tokens (the last may be shorter)
// and each window predicts its tokens that no earlier window predicted, never its first. With stride ==
// context the windows do not overlap and every token but each window's first is predicted once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "metrics/perplexity.h"
#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace tfm::infer {

// Each line's ids, then eot_id, lines in order.
std::vector<int64_t> text_stream(const tokenize::Tokenizer& tokenizer, const std::vector<std::string>& lines,
                                 int64_t eot_id);

// Summed negative log-likelihoods (natural log, accumulated in double) of the predicted tokens.
// 0 < stride <= context <= the model's max_len, else an Error naming the value.
metrics::PerplexityAccumulator lm_perplexity(const Transformer& model, std::span<const int64_t> stream,
                                             int64_t context, int64_t stride);

}  // namespace tfm::infer
