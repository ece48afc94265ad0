// The rules Hugging Face `generate` applies to one row of next-token scores before a token is chosen,
// reproduced exactly (transformers 5.x, generation/logits_process.py), in the order of its processor
// list (`_get_logits_processor`): repetition penalty, never-generated ids, min_new_tokens, forced EOS.
// Sampling then warps the result: temperature, top-k, top-p.
//
// What the rules see differs by search, as in HF: greedy and sampling process the raw logits; beam
// search processes log_softmax(logits), so a suppressed token's probability mass is not given back to
// the others (the Marian fixture's beam_score confirms it: -2.237610 this way, -2.237166 if pad were
// masked before the softmax).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace tfm::infer {

// One row's decoding limits and rules (HF GenerationConfig fields of the same names).
struct GenerationRules {
  int64_t max_new_tokens = 64;           // >= 1
  int64_t min_new_tokens = 0;            // EOS is masked until this many tokens were generated
  std::optional<int64_t> eos_id;         // ends a row; without one, rows run to max_new_tokens
  std::optional<int64_t> forced_eos_id;  // the only token allowed at the last allowed position
  std::vector<int64_t>
      suppressed_ids;  // never generated (bad_words_ids of length 1, suppress_tokens; Marian: pad)
  float repetition_penalty = 1.0f;  // > 0; 1 = off
};

// Throws tfm::Error naming the field when a value is out of range for a vocabulary of `vocab` tokens.
void validate(const GenerationRules& rules, int64_t vocab);

// Applies the rules in place to `scores` (one row, vocab entries). `sequence` is everything the row
// holds so far: its prompt (for an encoder-decoder, the decoder start token) and then its `generated`
// tokens; the repetition penalty covers all of it, prompt included, as HF's input_ids do.
//  - repetition penalty (CTRL, Keskar et al. 2019, as HF applies it): each distinct id in `sequence`
//    has its score s replaced by s * p when s < 0, else s / p; once per id however often it occurs.
//  - suppressed ids: -inf.
//  - min_new_tokens: EOS -inf while generated < min_new_tokens.
//  - forced EOS: when this token is the last one max_new_tokens allows (HF: cur_len == max_length - 1,
//    cur_len counting the prompt), every score becomes -inf and the forced id's becomes 0.
void apply_rules(std::span<float> scores, std::span<const int64_t> sequence, int64_t generated,
                 const GenerationRules& rules);

// The first index of the largest score, as torch.argmax.
int64_t argmax(std::span<const float> scores);

// log(sum exp(scores)), max-shifted, summed in double.
double log_sum_exp(std::span<const float> scores);

// Indices of the best `k` of `values` by (value descending, index ascending): torch.topk with ties
// resolved towards the lower index.
std::vector<int64_t> top_indices(std::span<const float> values, size_t k);

struct SamplingOptions {
  float temperature = 1.0f;  // > 0; scores are divided by it
  int64_t top_k = 0;         // keep the k best (and all tied with the k-th); 0 = off (HF's default is 50)
  float top_p = 1.0f;        // in (0, 1]; keep the smallest best-first set with probability >= top_p
  uint64_t seed = 0;         // token t of source s is drawn with uniform_at(seed, s << 32 | t)
};

void validate(const SamplingOptions& options);

// Temperature, then top-k, then top-p, in place; removed tokens get -inf (HF's logits warpers).
// top-p as HF's TopPLogitsWarper: sort ascending, drop every token whose cumulative probability
// (its own and all smaller ones) is <= 1 - top_p, and never the most probable token.
void apply_warpers(std::span<float> scores, const SamplingOptions& options);

// Draws from softmax(scores) by inverting the cumulative distribution at u in [0, 1): the first
// token, in id order, whose cumulative probability exceeds u. -inf scores are never drawn.
int64_t draw_token(std::span<const float> scores, float u);

}  // namespace tfm::infer
