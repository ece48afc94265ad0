#include "infer/generate.h"

#include <algorithm>

#include "core/error.h"
#include "infer/model_decoder.h"

namespace tfm::infer {

std::vector<std::vector<int64_t>> generate(const Transformer& model,
                                           const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options, const TokenCallback& on_token) {
  const ModelConfig& cfg = model.config();
  if (cfg.arch != Arch::DecoderOnly) fail("generate: the model is not a decoder-only language model");
  validate_prompts(prompts, cfg.tgt_vocab);
  size_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (int64_t(prompts[i].size()) > cfg.max_len)
      fail("prompt {} has {} tokens, longer than the model's context of {} tokens", i + 1, prompts[i].size(),
           cfg.max_len);
    longest = std::max(longest, prompts[i].size());
  }
  GenerationRules rules = options.rules;
  rules.max_new_tokens = std::min(rules.max_new_tokens, cfg.max_len - int64_t(longest) + 1);
  ModelDecoder decoder(model, int64_t(prompts.size()), {.max_positions = cfg.max_len, .max_rows = 0});
  if (options.sampling) return sample(decoder, prompts, rules, *options.sampling, on_token);
  return greedy_search(decoder, prompts, rules, on_token);
}

}  // namespace tfm::infer
