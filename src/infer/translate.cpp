#include "infer/translate.h"

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "infer/greedy.h"
#include "io/checkpoint.h"
#include "models/family.h"

namespace tfm::infer {

std::vector<std::string> translate(const Transformer& model, const tokenize::Tokenizer& src,
                                   const tokenize::Tokenizer& tgt, const std::vector<std::string>& sentences,
                                   const TranslateOptions& options, TranslateStats* stats) {
  const ModelConfig& cfg = model.config();
  TranslateStats local;
  TranslateStats& st = stats ? *stats : local;
  std::vector<std::vector<int64_t>> inputs(sentences.size());
  for (size_t i = 0; i < sentences.size(); ++i) {
    std::vector<int32_t> ids = src.encode(sentences[i]);
    const int64_t framing = options.add_bos_eos ? 2 : 0;  // room for [SOS] and [EOS]
    if (int64_t(ids.size()) + framing > cfg.max_len) {
      ids.resize(size_t(cfg.max_len - framing));
      if (!options.add_bos_eos) ids.back() = int32_t(cfg.eos_id);  // keep the tokenizer's final EOS
      ++st.truncated;
    }
    if (options.add_bos_eos) inputs[i].push_back(cfg.bos_id);
    inputs[i].insert(inputs[i].end(), ids.begin(), ids.end());
    if (options.add_bos_eos) inputs[i].push_back(cfg.eos_id);
  }
  // Decode sentences of similar length together: less padding.
  std::vector<size_t> order(sentences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return inputs[a].size() < inputs[b].size(); });
  std::vector<std::string> out(sentences.size());
  GreedyOptions g;
  g.max_new_tokens = options.max_new_tokens;
  for (size_t start = 0; start < order.size(); start += size_t(options.batch_size)) {
    size_t end = std::min(order.size(), start + size_t(options.batch_size));
    std::vector<size_t> rows;
    for (size_t k = start; k < end; ++k)
      if (!sentences[order[k]].empty()) rows.push_back(order[k]);
    if (rows.empty()) continue;
    size_t len = 0;
    for (size_t r : rows) len = std::max(len, inputs[r].size());
    Tensor batch = Tensor::empty_persistent({int64_t(rows.size()), int64_t(len)}, DType::I64);
    for (size_t b = 0; b < rows.size(); ++b)
      for (size_t t = 0; t < len; ++t)
        batch.data<int64_t>()[b * len + t] = t < inputs[rows[b]].size() ? inputs[rows[b]][t] : cfg.pad_id;
    auto decoded = greedy_decode(model, batch, g);
    for (size_t b = 0; b < rows.size(); ++b) {
      std::vector<int32_t> ids;
      for (size_t t = 1; t < decoded[b].size(); ++t) {  // skip the start token
        if (decoded[b][t] == cfg.eos_id) break;
        ids.push_back(int32_t(decoded[b][t]));
      }
      st.generated_tokens += int64_t(ids.size());
      out[rows[b]] = tgt.decode(ids, /*skip_special=*/true);
    }
  }
  st.sentences += int64_t(sentences.size());
  return out;
}

TranslationModel load_translation_model(const std::string& path) {
  namespace fs = std::filesystem;
  // A training run folder holds config.json too (the training config), but checkpoint.safetensors.
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "model.safetensors")) {
    Pretrained p = load_pretrained(path);
    if (p.model->config().arch != Arch::EncoderDecoder)
      fail("{}: a {} model is not an encoder-decoder and cannot translate", path, p.family->name);
    if (!p.tokenizer) fail("{}: no tokenizer.json", path);
    TranslationModel m;
    m.model = std::move(p.model);
    m.src = std::move(p.tokenizer);
    m.tgt = tokenize::load_tokenizer((fs::path(path) / "tokenizer.json").string());
    m.tokenizer_frames_source = true;
    return m;
  }
  std::string file = path;
  if (std::filesystem::is_directory(path))
    file = (std::filesystem::path(path) / "checkpoint.safetensors").string();
  if (!std::filesystem::exists(file)) fail("{}: no checkpoint here (expected a file or a run folder)", path);
  io::CheckpointInfo info = io::read_checkpoint_info(file);
  TranslationModel m;
  m.model = std::make_unique<Transformer>(model_config_from_json(info.model_config, file));
  io::load_checkpoint_weights(file, m.model->parameters(), nullptr);
  m.src = tokenize::load_tokenizer_json(info.src_tokenizer, file + " (source tokenizer)");
  m.tgt = tokenize::load_tokenizer_json(info.tgt_tokenizer, file + " (target tokenizer)");
  return m;
}

}  // namespace tfm::infer
