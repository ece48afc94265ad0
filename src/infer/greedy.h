// Greedy decoding. For the encoder-decoder: the encoder runs once, then at every step the decoder runs
// over the whole prefix (as the seed's greedy_decode does; a KV cache comes with infer/ later) and
// the most probable token is appended. The config's forbid_pad and forced_eos rules apply.
#pragma once

#include <cstdint>
#include <vector>

#include "models/transformer.h"

namespace tfm::infer {

struct GreedyOptions {
  int64_t max_new_tokens = 64;
  bool stop_at_eos = true;
};

// src_ids: I64 [batch, src_len] padded with pad_id. Returns per row the decoder sequence: bos, then the
// generated tokens (ending with eos when one was produced).
std::vector<std::vector<int64_t>> greedy_decode(const Transformer& model, const Tensor& src_ids,
                                                const GreedyOptions& options);

// Greedy continuation for a decoder-only model: prompt_ids I64 [batch, len] (no padding; every row the
// same length). Each step reruns the causal stack over the whole sequence and appends the most probable
// token (the first maximum, as argmax). Returns per row the prompt followed by the generated tokens,
// ending with eos when one was produced.
std::vector<std::vector<int64_t>> greedy_continue(const Transformer& model, const Tensor& prompt_ids,
                                                  const GreedyOptions& options);

}  // namespace tfm::infer
