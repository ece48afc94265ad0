#include "infer/decoder_step.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tfm::infer {

Tensor DecoderStep::prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts) {
  std::vector<int64_t> tokens;
  return prefill_in_passes(rows, prompts, 1, [&](std::span<const int64_t> live, auto slices) {
    tokens.clear();
    for (std::span<const int64_t> s : slices) tokens.push_back(s[0]);
    return step(live, tokens);
  });
}

Tensor DecoderStep::prefill_in_passes(std::span<const int64_t> rows,
                                      std::span<const std::vector<int64_t>> prompts, size_t chunk,
                                      const PrefillPass& feed) {
  TFM_CHECK(rows.size() == prompts.size(), "prefill: {} rows, {} prompts", rows.size(), prompts.size());
  TFM_CHECK(chunk > 0, "prefill: passes of {} tokens", chunk);
  const int64_t vocab = vocab_size();
  size_t longest = 0;
  for (const auto& p : prompts) {
    TFM_CHECK(!p.empty(), "prefill: empty prompt");
    longest = std::max(longest, p.size());
  }
  // Persistent: it must outlive the passes, whose results may live in a per-step arena.
  Tensor out;
  std::vector<int64_t> live, slots;
  std::vector<std::span<const int64_t>> tokens;
  for (size_t begin = 0; begin < longest; begin += chunk) {
    live.clear(), slots.clear(), tokens.clear();
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::vector<int64_t>& p = prompts[i];
      if (begin >= p.size()) continue;
      live.push_back(rows[i]), slots.push_back(int64_t(i));
      tokens.push_back(std::span<const int64_t>(p).subspan(begin, std::min(chunk, p.size() - begin)));
    }
    const Tensor pass = feed(live, tokens);
    if (longest <= chunk) return pass;  // one pass: every row's last token is in it
    const float* logits = checked_logits(pass, int64_t(live.size()), vocab);
    if (!out.defined()) out = Tensor::empty_persistent({int64_t(rows.size()), vocab});
    for (size_t k = 0; k < slots.size(); ++k)
      if (begin + chunk >= prompts[size_t(slots[k])].size())
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
