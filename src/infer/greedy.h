// Greedy decoding for the encoder-decoder: the encoder runs once, then at every step the decoder runs
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

}  // namespace tfm::infer
