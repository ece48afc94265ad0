#include "io/checkpoint.h"

#include <optional>

#include "core/error.h"
#include "io/safetensors.h"

namespace tfm::io {

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kScaleSuffix = ".scale";  // a quantized weight's scales, beside its integers

// A quantized weight as stored for a parameter of `shape` [N, K]: BF16 [N, K] without scales (bfloat16),
// I8 [N, K] with F32 [N] scales (INT8), or U8 [N, K / 2] with F32 [N, K / 32] block scales (Q4_0); nullopt
// when `name` is stored otherwise.
std::optional<kernels::QuantizedWeight> stored_quantized(const SafetensorsFile& file, const std::string& name,
                                                         const Shape& shape) {
  if (shape.size() != 2) return std::nullopt;
  const TensorInfo& info = file.info(name);
  const std::string scale = name + kScaleSuffix;
  kernels::QuantizedWeight q;
  q.rows = shape[0];
  q.cols = shape[1];
  if (info.dtype == DType::BF16 && !file.contains(scale)) {
    if (!(info.shape == shape))
      fail("tensor '{}': shape {} expected {}", name, info.shape.str(), shape.str());
    q.format = kernels::WeightFormat::BF16;
    q.data = file.view(name).clone(true);
    return q;
  }
  if ((info.dtype != DType::I8 && info.dtype != DType::U8) || !file.contains(scale)) return std::nullopt;
  q.format = info.dtype == DType::I8 ? kernels::WeightFormat::Int8 : kernels::WeightFormat::Q4_0;
  const Shape data_shape = q.format == kernels::WeightFormat::Int8 ? shape : Shape{shape[0], shape[1] / 2};
  const Shape scale_shape =
      q.format == kernels::WeightFormat::Int8 ? Shape{shape[0]} : Shape{shape[0], shape[1] / 32};
  if (!(info.shape == data_shape) || !(file.info(scale).shape == scale_shape))
    fail("tensor '{}': quantized as {} with scales {}, expected {} and {}", name, info.shape.str(),
         file.info(scale).shape.str(), data_shape.str(), scale_shape.str());
  q.data = file.view(name).clone(true);
  q.scale = file.get_f32(scale);
  return q;
}

nlohmann::json state_to_json(const TrainingState& s) {
  return {{"step", s.step},
          {"epoch", s.epoch},
          {"batch_index", s.batch_index},
          {"rng_seed", s.rng_seed},
          {"tokens_seen", s.tokens_seen},
          {"elapsed_seconds", s.elapsed_seconds},
          {"best_value", s.best_value},
          {"best_step", s.best_step},
          {"evaluations_since_best", s.evaluations_since_best},
          {"loss_scale", s.loss_scale},
          {"loss_scale_good_steps", s.loss_scale_good_steps}};
}

TrainingState state_from_json(const nlohmann::json& j) {
  TrainingState s;
  j.at("step").get_to(s.step);
  j.at("epoch").get_to(s.epoch);
  j.at("batch_index").get_to(s.batch_index);
  j.at("rng_seed").get_to(s.rng_seed);
  j.at("tokens_seen").get_to(s.tokens_seen);
  j.at("elapsed_seconds").get_to(s.elapsed_seconds);
  // Absent from checkpoints made before best-checkpoint tracking: no best yet.
  s.best_value = j.value("best_value", 0.0);
  s.best_step = j.value("best_step", int64_t(-1));
  s.evaluations_since_best = j.value("evaluations_since_best", int64_t(0));
  s.loss_scale = j.value("loss_scale", 0.0);
  s.loss_scale_good_steps = j.value("loss_scale_good_steps", int64_t(0));
  return s;
}

}  // namespace

void save_checkpoint(const std::string& path, ParameterStore& params, const train::Adam* optimizer,
                     const CheckpointInfo& info) {
  save_checkpoint(path, params, optimizer ? optimizer->state() : std::map<std::string, Tensor>{},
                  optimizer ? optimizer->steps() : 0, info);
}

void save_checkpoint(const std::string& path, ParameterStore& params,
                     const std::map<std::string, Tensor>& optimizer_state, int64_t optimizer_steps,
                     const CheckpointInfo& info) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (Parameter* p : params.list()) {
    if (p->quantized) {
      tensors.emplace_back("model." + p->name, p->quantized->data);
      if (p->quantized->scale.defined())
        tensors.emplace_back("model." + p->name + kScaleSuffix, p->quantized->scale);
    } else {
      tensors.emplace_back("model." + p->name, p->value);
    }
  }
  for (auto& [name, t] : optimizer_state) tensors.emplace_back("optim." + name, t);
  nlohmann::json meta = {{"format_version", kFormatVersion},    {"model_config", info.model_config},
                         {"train_config", info.train_config},   {"src_tokenizer", info.src_tokenizer},
                         {"tgt_tokenizer", info.tgt_tokenizer}, {"hf_family", info.hf_family},
                         {"state", state_to_json(info.state)},  {"optimizer_steps", optimizer_steps}};
  with_context("saving checkpoint " + path, [&] { save_safetensors(path, tensors, {{"tfm", meta.dump()}}); });
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  SafetensorsFile file = SafetensorsFile::open(path);
  auto it = file.metadata().find("tfm");
  if (it == file.metadata().end()) fail("{}: not a tfm checkpoint (no 'tfm' metadata)", path);
  try {
    nlohmann::json m = nlohmann::json::parse(it->second);
    if (m.at("format_version").get<int>() != kFormatVersion)
      fail("{}: checkpoint format version {} (this tfm reads {})", path, m.at("format_version").get<int>(),
           kFormatVersion);
    CheckpointInfo info;
    info.model_config = m.at("model_config");
    info.train_config = m.at("train_config");
    info.src_tokenizer = m.at("src_tokenizer").get<std::string>();
    info.tgt_tokenizer = m.at("tgt_tokenizer").get<std::string>();
    info.state = state_from_json(m.at("state"));
    info.hf_family = m.value("hf_family", "");
    return info;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed checkpoint metadata: {}", path, e.what());
  }
}

void load_checkpoint_weights(const std::string& path, ParameterStore& params, train::Adam* optimizer) {
  SafetensorsFile file = SafetensorsFile::open(path);
  std::string problems;
  for (Parameter* p : params.list()) {
    std::string name = "model." + p->name;
    if (!file.contains(name)) {
      problems += fmt::format("\n  missing tensor '{}'", name);
      continue;
    }
    if (std::optional<kernels::QuantizedWeight> q = stored_quantized(file, name, p->value.shape())) {
      kernels::dequantize_weight(*q, p->value.f32());
      p->quantized = std::make_shared<const kernels::QuantizedWeight>(std::move(*q));
      continue;
    }
    const TensorInfo& info = file.info(name);
    if (!(info.shape == p->value.shape())) {
      problems += fmt::format("\n  tensor '{}': shape {} expected {}", name, info.shape.str(),
                              p->value.shape().str());
      continue;
    }
    p->value.copy_(file.get_f32(name));
  }
  for (const std::string& name : file.names()) {
    if (!name.starts_with("model.") || params.find(name.substr(6))) continue;
    if (name.ends_with(kScaleSuffix)) {
      const Parameter* weight =
          params.find(name.substr(6, name.size() - 6 - std::string(kScaleSuffix).size()));
      if (weight && weight->quantized) continue;
    }
    problems += fmt::format("\n  unexpected tensor '{}'", name);
  }
  if (!problems.empty()) fail("{}: checkpoint does not match the model's architecture:{}", path, problems);
  if (!optimizer) return;
  std::map<std::string, Tensor> state;
  const std::map<std::string, Tensor> wanted = optimizer->state();
  for (const std::string& name : file.names()) {
    if (!name.starts_with("optim.")) continue;
    const std::string key = name.substr(6);
    const std::string param = key.substr(0, key.rfind(".exp_avg"));
    const Parameter* p = params.find(param);
    if (!wanted.count(key) && p && p->trainable) continue;  // another rank's share of the state
    state[key] = file.get_f32(name);
  }
  auto meta = nlohmann::json::parse(file.metadata().at("tfm"));
  with_context(path, [&] { optimizer->load_state(state, meta.at("optimizer_steps").get<int64_t>()); });
}

}  // namespace tfm::io
