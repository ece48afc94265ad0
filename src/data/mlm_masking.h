// BERT's masked-language-model corruption (Devlin et al. 2019, section 3.1 and appendix A.1; Hugging Face's
// DataCollatorForLanguageModeling): every token that is not special is chosen with probability
// `probability`; a chosen token becomes mask_id with probability 0.8, a uniformly random id in
// [0, vocab_size) with probability 0.1, and stays as it is with probability 0.1. The model learns to
// predict the original id at the chosen positions only.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "tensor/tensor.h"

namespace tfm::data {

struct MlmMasking {
  double probability = 0.15;
  int64_t mask_id = -1;
  int64_t vocab_size = 0;
  std::vector<int64_t> special_ids;  // never chosen (padding, start, end, mask, unknown)
  int64_t ignore_id = -100;          // label of the positions not chosen
};

struct MaskedBatch {
  Tensor inputs;  // I64, the corrupted ids
  Tensor labels;  // I64, the original id where chosen, ignore_id elsewhere
  int64_t chosen = 0;
};

// Corrupts a copy of `ids` (I64, any shape). Draws 3 numbers per token from `rng`, so the result depends
// on rng's position only. When no token is chosen and one is eligible, the first eligible token drawn by
// a fourth number is (a batch always has something to predict).
MaskedBatch mask_for_mlm(const Tensor& ids, const MlmMasking& masking, Rng& rng);

}  // namespace tfm::data
