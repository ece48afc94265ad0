#include "infer/translate.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "infer/beam_search.h"
#include "infer/model_decoder.h"
#include "infer/sampling.h"
#include "models/load_model.h"

namespace tfm::infer {

GenerationRules translation_rules(const ModelConfig& cfg, int64_t max_new_tokens) {
  GenerationRules rules;
  // A row never holds more than max_len tokens: the start token and all generated ones but the last.
  rules.max_new_tokens = std::min(max_new_tokens, cfg.max_len);
  rules.eos_id = cfg.eos_id;
  if (cfg.forced_eos) rules.forced_eos_id = cfg.eos_id;
  if (cfg.forbid_pad) rules.suppressed_ids.push_back(cfg.pad_id);
  return rules;
}

std::vector<int64_t> translation_source(const ModelConfig& cfg, const tokenize::Tokenizer& src,
                                        const std::string& sentence, bool add_bos_eos, bool* truncated) {
  std::vector<int32_t> ids = src.encode(sentence);
  const int64_t framing = add_bos_eos ? 2 : 0;  // room for [SOS] and [EOS]
  if (truncated) *truncated = int64_t(ids.size()) + framing > cfg.max_len;
  if (int64_t(ids.size()) + framing > cfg.max_len) {
    ids.resize(size_t(cfg.max_len - framing));
    if (!add_bos_eos) ids.back() = int32_t(cfg.eos_id);  // keep the tokenizer's final EOS
  }
  std::vector<int64_t> out;
  if (add_bos_eos) out.push_back(cfg.bos_id);
  out.insert(out.end(), ids.begin(), ids.end());
  if (add_bos_eos) out.push_back(cfg.eos_id);
  return out;
}

std::vector<std::vector<std::vector<int64_t>>> translation_search(DecoderStep& decoder, const ModelConfig& cfg,
                                                                  size_t sources, const GenerationRules& rules,
                                                                  const TranslateOptions& options,
                                                                  int64_t hypotheses) {
  const std::vector<std::vector<int64_t>> prompts(sources, std::vector<int64_t>{cfg.bos_id});
  std::vector<std::vector<std::vector<int64_t>>> out(sources);
  if (options.beams == 1) {
    std::vector<std::vector<int64_t>> generated = greedy_search(decoder, prompts, rules);
    for (size_t s = 0; s < sources; ++s) out[s].push_back(std::move(generated[s]));
    return out;
  }
  BeamOptions beam;
  beam.num_beams = options.beams;
  beam.early_stopping = options.early_stopping;
  std::vector<std::vector<Hypothesis>> found = beam_search_all(decoder, prompts, rules, beam);
  for (size_t s = 0; s < sources; ++s)
    for (size_t h = 0; h < found[s].size() && int64_t(h) < hypotheses; ++h)
      out[s].push_back(std::move(found[s][h].tokens));
  return out;
}

std::string translation_text(const ModelConfig& cfg, const tokenize::Tokenizer& tgt,
                             std::span<const int64_t> generated) {
  std::vector<int32_t> ids;
  for (int64_t t : generated) {
    if (t == cfg.eos_id) break;
    ids.push_back(int32_t(t));
  }
  return tgt.decode(ids, /*skip_special=*/true);
}

std::vector<std::string> translate(const Transformer& model, const tokenize::Tokenizer& src,
                                   const tokenize::Tokenizer& tgt, const std::vector<std::string>& sentences,
                                   const TranslateOptions& options, TranslateStats* stats) {
  const ModelConfig& cfg = model.config();
  TranslateStats local;
  TranslateStats& st = stats ? *stats : local;
  std::vector<std::vector<int64_t>> inputs(sentences.size());
  for (size_t i = 0; i < sentences.size(); ++i) {
    bool truncated = false;
    inputs[i] = translation_source(cfg, src, sentences[i], options.add_bos_eos, &truncated);
    st.truncated += truncated;
  }
  // Decode sentences of similar length together: less padding in the encoder.
  std::vector<size_t> order(sentences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].size() < inputs[b].size(); });
  TFM_CHECK(options.batch_size > 0 && options.beams > 0 && options.max_new_tokens > 0,
            "translate: batch {}, beams {}, max_new_tokens {}", options.batch_size, options.beams,
            options.max_new_tokens);
  const GenerationRules rules = translation_rules(cfg, options.max_new_tokens);
  std::vector<std::string> out(sentences.size());
  for (size_t start = 0; start < order.size(); start += size_t(options.batch_size)) {
    const size_t end = std::min(order.size(), start + size_t(options.batch_size));
    std::vector<size_t> rows;
    std::vector<std::vector<int64_t>> sources;
    for (size_t k = start; k < end; ++k)
      if (!sentences[order[k]].empty()) rows.push_back(order[k]), sources.push_back(inputs[order[k]]);
    if (rows.empty()) continue;
    // A row holds the start token and every generated token but the last.
    ModelDecoder decoder(
        model, sources,
        {.max_positions = rules.max_new_tokens, .max_rows = int64_t(rows.size()) * options.beams});
    const auto generated = translation_search(decoder, cfg, rows.size(), rules, options, 1);
    for (size_t b = 0; b < rows.size(); ++b) {
      st.generated_tokens += int64_t(generated[b][0].size());
      out[rows[b]] = translation_text(cfg, tgt, generated[b][0]);
    }
  }
  st.sentences += int64_t(sentences.size());
  return out;
}

TranslationModel load_translation_model(const std::string& path) {
  LoadedModel loaded = load_model(path);
  if (loaded.model->config().arch != Arch::EncoderDecoder)
    fail("{}: a {} model is not an encoder-decoder and cannot translate", path,
         arch_name(loaded.model->config().arch));
  if (!loaded.src) fail("{}: no tokenizer.json", path);
  TranslationModel m;
  m.model = std::move(loaded.model);
  m.src = std::move(loaded.src);
  m.tgt = std::move(loaded.tgt);
  m.tokenizer_frames_source = loaded.family != nullptr;  // Hugging Face tokenizers add </s> themselves
  return m;
}

}  // namespace tfm::infer
