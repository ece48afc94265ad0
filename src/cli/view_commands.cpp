#include "cli/view_commands.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "autograd/tape.h"
#include "core/error.h"
#include "infer/translate.h"
#include "io/atomic_file.h"
#include "models/load_model.h"
#include "viz/html.h"

namespace tfm::cli {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Tensor ids_tensor(const std::vector<int64_t>& ids) {
  Tensor t = Tensor::empty({1, int64_t(ids.size())}, DType::I64);
  std::copy(ids.begin(), ids.end(), t.data<int64_t>());
  return t;
}

// Each token as its own text (special tokens included; byte-level pieces of a character show U+FFFD).
std::vector<std::string> token_labels(const tokenize::Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<std::string> labels;
  for (int64_t id : ids)
    labels.push_back(tok.decode(std::vector<int32_t>{int32_t(id)}, /*skip_special=*/false));
  return labels;
}

// One section: for every layer, a heatmap per head of probs[l] [1, heads, q, k].
std::string attention_section(const std::string& name, const std::vector<Tensor>& probs,
                              const std::vector<std::string>& queries, const std::vector<std::string>& keys) {
  std::string html = "<h2>" + viz::escape(name) + "</h2>\n";
  for (size_t l = 0; l < probs.size(); ++l) {
    const Tensor& p = probs[l];
    if (!p.defined()) continue;
    const int64_t heads = p.size(1), q = p.size(2), k = p.size(3);
    html += fmt::format("<h3>Layer {}</h3>\n<div class=\"charts\">\n", l + 1);
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<float> values(p.f32() + h * q * k, p.f32() + (h + 1) * q * k);
      html += viz::heatmap(fmt::format("{}, layer {}, head {}", name, l + 1, h + 1), queries, keys, values);
    }
    html += "</div>\n";
  }
  return html;
}

}  // namespace

int cmd_attention(const std::string& model_path, const std::string& src, const std::string& tgt,
                  const std::string& out) {
  LoadedModel m = load_model(model_path);
  if (!m.src) fail("{}: no tokenizer", model_path);
  Transformer& model = *m.model;
  const ModelConfig& c = model.config();
  auto encode = [](const tokenize::Tokenizer& tok, const std::string& text) {
    const std::vector<int32_t> ids = tok.encode(text);
    return std::vector<int64_t>(ids.begin(), ids.end());
  };
  std::vector<int64_t> src_ids = encode(*m.src, src);
  if (src_ids.empty()) fail("--src '{}' encodes to no tokens", src);
  const bool hf = m.family != nullptr;  // Hugging Face tokenizers frame sentences themselves
  if (c.arch != Arch::DecoderOnly && !hf) {
    src_ids.insert(src_ids.begin(), c.bos_id);
    src_ids.push_back(c.eos_id);
  }
  if (int64_t(src_ids.size()) > c.max_len)
    fail("--src has {} tokens, more than the model's maximum of {}", src_ids.size(), c.max_len);

  std::string body, target = tgt;
  ag::Tape tape;
  ag::Tape::Scope scope(tape);
  ag::NoGrad no_grad(tape);
  nn::Context ctx{tape, false, nullptr};
  model.set_keep_attention(true);
  const std::vector<std::string> src_labels = token_labels(*m.src, src_ids);
  if (c.arch == Arch::EncoderDecoder) {
    if (target.empty()) {
      infer::TranslateOptions to;
      to.add_bos_eos = !hf;
      target = infer::translate(model, *m.src, *m.tgt, {src}, to)[0];
      body += "<p>Target: the model's greedy translation.</p>\n";
    }
    std::vector<int64_t> tgt_ids = {c.bos_id};
    for (int32_t id : m.tgt->encode(target))
      if (id != c.eos_id || !hf) tgt_ids.push_back(id);  // HF tokenizers end a sentence with </s>
    if (int64_t(tgt_ids.size()) > c.max_len) tgt_ids.resize(size_t(c.max_len));
    const Tensor s = ids_tensor(src_ids), t = ids_tensor(tgt_ids);
    model.decode(ctx, model.encode(ctx, s), s, t);
    const std::vector<std::string> tgt_labels = token_labels(*m.tgt, tgt_ids);
    body += "<p>Source: " + viz::escape(src) + "<br>Target: " + viz::escape(target) + "</p>\n";
    body += attention_section("Encoder self-attention", model.attention_maps().encoder_self, src_labels,
                              src_labels);
    body += attention_section("Decoder self-attention", model.attention_maps().decoder_self, tgt_labels,
                              tgt_labels);
    body +=
        attention_section("Cross-attention", model.attention_maps().decoder_cross, tgt_labels, src_labels);
  } else if (c.arch == Arch::DecoderOnly) {
    model.decode_only(ctx, ids_tensor(src_ids));
    body += "<p>Text: " + viz::escape(src) + "</p>\n";
    body += attention_section("Self-attention (causal)", model.attention_maps().decoder_self, src_labels,
                              src_labels);
  } else {
    model.encode(ctx, ids_tensor(src_ids));
    body += "<p>Text: " + viz::escape(src) + "</p>\n";
    body += attention_section("Self-attention", model.attention_maps().encoder_self, src_labels, src_labels);
  }
  body = "<p>Model: " + viz::escape(model_path) + " (" + arch_name(c.arch) +
         fmt::format(
             ", {} heads). Each row is a query token, each column a key token; darker is more "
             "attention (each row sums to 1).</p>\n",
             c.heads) +
         body;
  io::write_file_atomic(out, viz::page("Attention of " + fs::path(model_path).filename().string(), body));
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

int cmd_report(const std::string& run_dir, const std::string& out_path) {
  const std::string metrics_path = (fs::path(run_dir) / "metrics.jsonl").string();
  std::ifstream in(metrics_path);
  if (!in) fail("{}: cannot open (is {} a run folder?)", metrics_path, run_dir);
  viz::Series loss{"training loss", {}}, lr{"learning rate", {}}, tps{"tokens/s", {}},
      valid{"validation loss", {}}, bleu{"BLEU", {}}, chrf{"chrF", {}}, aux{"balancing loss", {}};
  Json last_eval, test;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    Json j = Json::parse(lines[i], nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (i + 1 == lines.size()) break;  // a run still writing (or killed) may leave its last line torn
      fail("{}:{}: not a JSON object", metrics_path, i + 1);
    }
    const double step = j.value("step", 0.0);
    if (j.contains("loss")) {
      loss.points.emplace_back(step, j["loss"].get<double>());
      lr.points.emplace_back(step, j.value("lr", NAN));
      tps.points.emplace_back(step, j.value("tokens_per_second", NAN));
      if (j.contains("aux_loss")) aux.points.emplace_back(step, j["aux_loss"].get<double>());
    }
    if (j.contains("valid_loss")) {
      valid.points.emplace_back(step, j["valid_loss"].is_number() ? j["valid_loss"].get<double>() : NAN);
      if (j.contains("valid_bleu")) bleu.points.emplace_back(step, j["valid_bleu"].get<double>());
      if (j.contains("valid_chrf")) chrf.points.emplace_back(step, j["valid_chrf"].get<double>());
      last_eval = j;
    }
    if (j.contains("test_bleu")) test = j;
  }
  if (loss.points.empty()) fail("{}: no training steps logged yet", metrics_path);

  std::string body = "<p>Run folder: " + viz::escape(fs::absolute(run_dir).string()) +
                     fmt::format(". {} steps logged, the last at step {:.0f}.</p>\n", loss.points.size(),
                                 loss.points.back().first);
  body += "<h2>Training</h2>\n<div class=\"charts\">\n";
  body += viz::line_chart("Training loss", "step", "loss", {loss});
  if (!aux.points.empty()) body += viz::line_chart("Load-balancing loss", "step", "aux loss", {aux});
  body += viz::line_chart("Learning rate", "step", "lr", {lr});
  body += viz::line_chart("Throughput", "step", "tokens / s", {tps});
  body += "</div>\n";
  if (!valid.points.empty()) {
    body += "<h2>Validation</h2>\n<div class=\"charts\">\n";
    body += viz::line_chart("Validation loss", "step", "loss per token", {valid});
    if (!bleu.points.empty())
      body += viz::line_chart("Validation BLEU and chrF", "step", "score", {bleu, chrf});
    body += "</div>\n";
  }
  if (!test.is_null())
    body += fmt::format(
        "<h2>Test</h2>\n<p>BLEU {:.2f}, chrF {:.2f} ({} beams, the model of step {}; translations in "
        "test.hyp).</p>\n",
        test["test_bleu"].get<double>(), test["test_chrf"].get<double>(), test.value("test_beam", 1),
        test.value("test_step", 0));
  if (last_eval.contains("samples")) {
    body += fmt::format("<h2>Samples at step {}</h2>\n<pre>", last_eval.value("step", 0));
    for (const Json& s : last_eval["samples"]) body += viz::escape(s.get<std::string>()) + "\n";
    body += "</pre>\n";
  }
  const fs::path config_path = fs::path(run_dir) / "config.json";
  if (fs::exists(config_path))
    body += "<h2>Configuration</h2>\n<pre>" + viz::escape(io::read_file(config_path.string())) + "</pre>\n";
  const std::string out = out_path.empty() ? (fs::path(run_dir) / "report.html").string() : out_path;
  io::write_file_atomic(out, viz::page("Training report: " + fs::path(run_dir).filename().string(), body));
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

}  // namespace tfm::cli
