// A model as tfm serve holds it: loaded once (any folder load_model accepts), with its tokenizers, chat
// template, scheduler, and the operations the endpoints run on it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infer/translate.h"
#include "models/load_model.h"
#include "serve/chat_template.h"
#include "serve/scheduler.h"

namespace tfm::serve {

struct ServedModel {
  std::string name, path;
  LoadedModel loaded;
  std::optional<ChatTemplate> chat_template;  // the folder's; none: ChatTemplate::fallback()
  std::unique_ptr<Scheduler> scheduler;
  bool tokenizer_frames_source = false;          // see infer::TranslateOptions::add_bos_eos
  std::string source_language, target_language;  // a translation model's, from its name ("mt-en-es")

  const Transformer& model() const { return *loaded.model; }
  const ModelConfig& config() const { return loaded.model->config(); }
  const tokenize::Tokenizer& tokenizer() const { return *loaded.tgt; }
  // "decoder-only", "encoder-decoder", "encoder-only".
  const char* kind() const { return arch_name(config().arch); }
};

// Loads `path` as `name`. Errors name the path (no tokenizer, an unreadable folder).
std::unique_ptr<ServedModel> load_served_model(const std::string& name, const std::string& path,
                                               const SchedulerOptions& options);

// The mean of the last hidden states over the input's tokens (the encoder's for encoder models, the
// decoder's after its final norm for decoder-only ones), run on the model's scheduler thread.
std::vector<float> embed(ServedModel& m, const std::vector<int64_t>& ids);

// Translates one sentence exactly as `tfm translate` does (the same framing, rules and search, the source
// encoded alone): up to `hypotheses` translations, best first (greedy: one). An empty sentence gives "".
std::vector<std::string> translate(ServedModel& m, const std::string& sentence, int64_t beams,
                                   int64_t hypotheses, const std::function<bool()>& cancelled);

}  // namespace tfm::serve
