#include "serve/served_model.h"

#include <filesystem>
#include <regex>

#include "infer/sampling.h"

namespace tfm::serve {

namespace {

// "mt-en-es", "opus-mt-en-es" -> ("en", "es"); anything else -> ("", "").
std::pair<std::string, std::string> languages_of(const std::string& name) {
  static const std::regex pair(R"(.*(?:^|[-_])([a-z]{2,3})[-_]([a-z]{2,3})$)");
  std::smatch m;
  if (std::regex_match(name, m, pair)) return {m[1], m[2]};
  return {};
}

}  // namespace

std::unique_ptr<ServedModel> load_served_model(const std::string& name, const std::string& path,
                                               const SchedulerOptions& options) {
  auto m = std::make_unique<ServedModel>();
  m->name = name, m->path = path;
  m->loaded = load_model(path);
  if (!m->loaded.tgt) fail("{}: no tokenizer (tokenizer.json) to serve the model with", path);
  m->tokenizer_frames_source = m->loaded.family != nullptr;  // Hugging Face tokenizers add </s> themselves
  const std::string dir =
      std::filesystem::is_directory(path) ? path : std::filesystem::path(path).parent_path().string();
  m->chat_template = load_chat_template(dir);
  if (m->config().arch == Arch::EncoderDecoder) {
    std::tie(m->source_language, m->target_language) = languages_of(name);
    if (m->source_language.empty())
      std::tie(m->source_language, m->target_language) =
          languages_of(std::filesystem::path(path).filename().string());
  }
  m->scheduler = std::make_unique<Scheduler>(*m->loaded.model, options);
  return m;
}

std::vector<float> embed(ServedModel& m, const std::vector<int64_t>& ids) {
  const Transformer& model = m.model();
  const int64_t width = model.config().d_model;
  std::vector<float> mean(size_t(width), 0.0f);
  m.scheduler->run([&] {
    ag::Tape tape;
    ag::Tape::Scope scope(tape);
    ag::NoGrad no_grad(tape);
    nn::Context c{tape, false, nullptr};
    Tensor input = Tensor::empty({1, int64_t(ids.size())}, DType::I64);
    std::copy(ids.begin(), ids.end(), input.data<int64_t>());
    ag::Var hidden =
        model.config().arch == Arch::DecoderOnly ? model.decode_only(c, input) : model.encode(c, input);
    const Tensor h = hidden.value().contiguous();
    const float* x = h.f32();
    // Summed in double, one token after another: the same input always gives the same vector.
    std::vector<double> sum(size_t(width), 0.0);
    for (size_t t = 0; t < ids.size(); ++t)
      for (int64_t j = 0; j < width; ++j) sum[size_t(j)] += x[int64_t(t) * width + j];
    for (int64_t j = 0; j < width; ++j) mean[size_t(j)] = float(sum[size_t(j)] / double(ids.size()));
  });
  return mean;
}

std::vector<std::string> translate(ServedModel& m, const std::string& sentence, int64_t beams,
                                   int64_t hypotheses, const std::function<bool()>& cancelled) {
  if (sentence.empty()) return {""};
  const ModelConfig& cfg = m.config();
  infer::TranslateOptions options;  // tfm translate's defaults but the beams
  options.beams = beams;
  options.add_bos_eos = !m.tokenizer_frames_source;
  const std::vector<int64_t> source =
      infer::translation_source(cfg, *m.loaded.src, sentence, options.add_bos_eos);
  const infer::GenerationRules rules = infer::translation_rules(cfg, options.max_new_tokens);
  // A row holds the start token and every generated token but the last.
  std::unique_ptr<Sequence> seq = m.scheduler->admit(beams, rules.max_new_tokens, source, cancelled);
  const auto found = infer::translation_search(*seq, cfg, 1, rules, options, hypotheses);
  std::vector<std::string> out;
  for (const std::vector<int64_t>& tokens : found[0])
    out.push_back(infer::translation_text(cfg, *m.loaded.tgt, tokens));
  return out;
}

}  // namespace tfm::serve
