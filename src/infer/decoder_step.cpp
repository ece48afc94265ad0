#include "infer/decoder_step.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tfm::infer {

Tensor DecoderStep::prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts) {
  TFM_CHECK(rows.size() == prompts.size(), "{} rows, {} prompts", rows.size(), prompts.size());
  const int64_t vocab = vocab_size();
  size_t longest = 0;
  for (const auto& p : prompts) {
    TFM_CHECK(!p.empty(), "empty prompt");
    longest = std::max(longest, p.size());
  }
  // Persistent: it must outlive the step() calls below, whose results may live in a per-step arena.
  Tensor out = Tensor::empty_persistent({int64_t(rows.size()), vocab});
  std::vector<int64_t> live, tokens, slots;
  for (size_t pos = 0; pos < longest; ++pos) {
    live.clear(), tokens.clear(), slots.clear();
    for (size_t i = 0; i < rows.size(); ++i) {
      if (pos >= prompts[i].size()) continue;
      live.push_back(rows[i]);
      tokens.push_back(prompts[i][pos]);
      slots.push_back(int64_t(i));
    }
    const Tensor step_logits = step(live, tokens);
    const float* logits = checked_logits(step_logits, int64_t(live.size()), vocab);
    for (size_t k = 0; k < slots.size(); ++k)
      if (pos + 1 == prompts[size_t(slots[k])].size())
        std::memcpy(out.f32() + slots[k] * vocab, logits + int64_t(k) * vocab, size_t(vocab) * sizeof(float));
  }
  return out;
}

const float* checked_logits(const Tensor& logits, int64_t rows, int64_t vocab) {
  if (!logits.defined() || logits.dtype() != DType::F32 || logits.dim() != 2 || logits.size(0) != rows ||
      logits.size(1) != vocab || !logits.is_contiguous())
    fail("decoder step returned {} for {} rows; expected contiguous F32 [{}, {}]",
         logits.defined() ? logits.str() : "no tensor", rows, rows, vocab);
  return logits.f32();
}

}  // namespace tfm::infer
