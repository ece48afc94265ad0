// The one function every search algorithm (greedy, sampling, beam) drives: feed one token to each of
// some cache rows, get the next-token logits back. A model implements it with its KV cache; tests
// implement it with toy tables.
//
// A DecoderStep holds a number of rows; each row is one decoder state (a prefix that has been fed, its
// cached keys and values, and, for an encoder-decoder, which encoded source it attends to). It is
// created with one row per source, in source order, with nothing fed yet.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "tensor/tensor.h"

namespace tfm::infer {

class DecoderStep {
 public:
  virtual ~DecoderStep() = default;

  virtual int64_t vocab_size() const = 0;

  // Appends tokens[i] to row rows[i] and returns the logits for the token after it: F32, contiguous,
  // [rows.size(), vocab_size()], raw (before any search rule). `rows` are distinct; rows not named are
  // left alone and cost nothing (finished sequences are simply not passed again). The returned tensor
  // needs to stay valid only until the next call on this object.
  virtual Tensor step(std::span<const int64_t> rows, std::span<const int64_t> tokens) = 0;

  // Feeds each row rows[i] its whole prompt prompts[i] (non-empty; prompts may differ in length) and
  // returns the logits after the last prompt token, as step() does. The default feeds the prompts
  // position by position through step(); a model overrides it with one batched forward pass.
  virtual Tensor prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts);

  // Rebuilds the rows: afterwards there are parents.size() rows and row i is a copy of the former row
  // parents[i]. Beam search uses it to expand each source into its beams (parents 0,0,0,0,1,1,1,1...),
  // to follow the surviving beams after each step (a parent may be copied several times or dropped),
  // and to drop the rows of sources that are finished.
  virtual void reorder(std::span<const int64_t> parents) = 0;

 protected:
  // prefill() in passes of up to `chunk` tokens per row: pass k calls feed(live, tokens) with the rows whose
  // prompts reach past k * chunk and each one's prompt tokens [k * chunk, (k + 1) * chunk), and keeps each
  // row's logits from the pass that held its last prompt token.
  using PrefillPass =
      std::function<Tensor(std::span<const int64_t> live, std::span<const std::span<const int64_t>> tokens)>;
  Tensor prefill_in_passes(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts,
                           size_t chunk, const PrefillPass& feed);
};

// The data of logits that a step returned for `rows` rows, after checking that they are what step()
// promises (a wrong shape or dtype is an Error naming both, not a read out of bounds).
const float* checked_logits(const Tensor& logits, int64_t rows, int64_t vocab);

}  // namespace tfm::infer
