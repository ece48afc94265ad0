#include "infer/greedy.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace tfm::infer {

std::vector<std::vector<int64_t>> greedy_decode(const Transformer& model, const Tensor& src_ids,
                                                const GreedyOptions& options) {
  const ModelConfig& cfg = model.config();
  const int64_t batch = src_ids.size(0);
  const int64_t max_steps = std::min(options.max_new_tokens, cfg.max_len - 1);
  std::vector<std::vector<int64_t>> out(size_t(batch), std::vector<int64_t>{cfg.bos_id});
  std::vector<bool> done(size_t(batch), false);

  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context c{tape, false, nullptr};
  Tensor memory = model.encode(c, src_ids).value().clone(/*persistent=*/true);
  for (int64_t step = 0; step < max_steps; ++step) {
    tape.reset();
    // Finished rows are padded; padding is masked, so it does not change the other rows.
    const int64_t len = step + 1;
    Tensor tgt = Tensor::empty({batch, len}, DType::I64);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < len; ++t)
        tgt.data<int64_t>()[b * len + t] = t < int64_t(out[b].size()) ? out[b][t] : cfg.pad_id;
    ag::Var hidden = model.decode(c, tape.leaf(memory), src_ids, tgt);
    Tensor last = hidden.value().narrow(1, len - 1, 1).contiguous();
    Tensor logits = model.project(c, tape.leaf(last)).value();  // [batch, 1, vocab]
    const int64_t vocab = logits.size(-1);
    bool all_done = true;
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      float* z = logits.f32() + b * vocab;
      // Hugging Face's rules for Marian: pad is never generated; the last step the length limit
      // allows is EOS (forced_eos_token_id).
      if (cfg.forbid_pad) z[cfg.pad_id] = -std::numeric_limits<float>::infinity();
      bool force_eos = cfg.forced_eos && step == max_steps - 1;
      int64_t best = force_eos ? cfg.eos_id : std::max_element(z, z + vocab) - z;  // first maximum, as argmax
      out[b].push_back(best);
      if (options.stop_at_eos && best == cfg.eos_id) done[b] = true;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  return out;
}

std::vector<std::vector<int64_t>> greedy_continue(const Transformer& model, const Tensor& prompt_ids,
                                                  const GreedyOptions& options) {
  const ModelConfig& cfg = model.config();
  TFM_CHECK(cfg.arch == Arch::DecoderOnly, "greedy_continue: not a decoder-only model");
  const int64_t batch = prompt_ids.size(0), prompt_len = prompt_ids.size(1);
  if (prompt_len < 1) fail("greedy_continue: empty prompt");
  if (prompt_len > cfg.max_len)
    fail("greedy_continue: prompt of {} tokens exceeds the model's maximum length of {}", prompt_len,
         cfg.max_len);
  const int64_t max_steps = std::min(options.max_new_tokens, cfg.max_len - prompt_len);
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    out[b].assign(prompt_ids.data<int64_t>() + b * prompt_len,
                  prompt_ids.data<int64_t>() + (b + 1) * prompt_len);
  std::vector<bool> done(size_t(batch), false);

  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context c{tape, false, nullptr};
  for (int64_t step = 0; step < max_steps; ++step) {
    tape.reset();
    // A finished row is extended with pad; being causal, that does not change the other rows.
    const int64_t len = prompt_len + step;
    Tensor ids = Tensor::empty({batch, len}, DType::I64);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t t = 0; t < len; ++t)
        ids.data<int64_t>()[b * len + t] = t < int64_t(out[b].size()) ? out[b][t] : cfg.pad_id;
    Tensor hidden = model.decode_only(c, ids).value();
    Tensor last = hidden.narrow(1, len - 1, 1).contiguous();
    Tensor logits = model.project(c, tape.leaf(last)).value();  // [batch, 1, vocab]
    const int64_t vocab = logits.size(-1);
    bool all_done = true;
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      const float* z = logits.f32() + b * vocab;
      int64_t best = std::max_element(z, z + vocab) - z;
      out[b].push_back(best);
      if (options.stop_at_eos && best == cfg.eos_id) done[b] = true;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  return out;
}

}  // namespace tfm::infer
