#include "io/checkpoint.h"

#include <cstring>
#include <optional>

#include "core/error.h"
#include "io/safetensors.h"

namespace tfm::io {

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kScaleSuffix = ".scale";  // a quantized weight's scales, beside its integers

constexpr const char* kFormatsKey = "tfm.weight_formats";  // {parameter: "q8_0", ...} of the quantized ones

// Checks that `name` is stored as `dtype` [shape].
void expect_stored(const SafetensorsFile& file, const std::string& name, DType dtype, const Shape& shape) {
  const TensorInfo& info = file.info(name);
  if (info.dtype != dtype || !(info.shape == shape))
    fail("tensor '{}': stored as {} {}, expected {} {}", name, dtype_name(info.dtype), info.shape.str(),
         dtype_name(dtype), shape.str());
}

// The quantized weight a parameter of `shape` [N, K] is stored as in `format`: the data tensor as
// kernels/cpu/quantized.h lays it out, plus F32 [N] row scales for INT8.
kernels::QuantizedWeight stored_as(const SafetensorsFile& file, const std::string& name, const Shape& shape,
                                   kernels::WeightFormat format) {
  using kernels::WeightFormat;
  if (shape.size() != 2)
    fail("tensor '{}': a {} weight must be a matrix, not {}", name, kernels::format_name(format),
         shape.str());
  kernels::QuantizedWeight q;
  q.format = format;
  q.rows = shape[0];
  q.cols = shape[1];
  if (kernels::is_block_format(format) && q.cols % kernels::kBlockWeights != 0)
    fail("tensor '{}': {} rows of {} weights are not whole blocks of {}", name, kernels::format_name(format),
         q.cols, kernels::kBlockWeights);
  const DType dtype = format == WeightFormat::BF16   ? DType::BF16
                      : format == WeightFormat::F16  ? DType::F16
                      : format == WeightFormat::Int8 ? DType::I8
                                                     : DType::U8;
  const Shape data_shape = dtype == DType::U8 ? Shape{q.rows, kernels::row_bytes(format, q.cols)} : shape;
  expect_stored(file, name, dtype, data_shape);
  q.data = file.view(name).clone(true);
  if (format == WeightFormat::Int8) {
    expect_stored(file, name + kScaleSuffix, DType::F32, Shape{q.rows});
    q.scale = file.get_f32(name + kScaleSuffix);
  }
  return q;
}

// Checkpoints written before the formats were recorded: BF16 without scales, INT8 with F32 [N] scales, and
// Q4_0 as U8 [N, K / 2] nibbles with F32 [N, K / 32] block scales (repacked into ggml's blocks, the scales
// rounded to float16). nullopt: `name` is a float tensor.
std::optional<kernels::QuantizedWeight> stored_before_formats(const SafetensorsFile& file,
                                                              const std::string& name, const Shape& shape) {
  if (shape.size() != 2) return std::nullopt;
  const TensorInfo& info = file.info(name);
  const std::string scale = name + kScaleSuffix;
  if (info.dtype == DType::BF16 && !file.contains(scale))
    return stored_as(file, name, shape, kernels::WeightFormat::BF16);
  if (info.dtype == DType::I8 && file.contains(scale))
    return stored_as(file, name, shape, kernels::WeightFormat::Int8);
  if (info.dtype != DType::U8 || !file.contains(scale)) return std::nullopt;
  const int64_t N = shape[0], K = shape[1], blocks = K / kernels::kBlockWeights;
  expect_stored(file, name, DType::U8, Shape{N, K / 2});
  expect_stored(file, scale, DType::F32, Shape{N, blocks});
  const Tensor nibbles = file.view(name).contiguous(), scales = file.get_f32(scale);
  kernels::QuantizedWeight q;
  q.format = kernels::WeightFormat::Q4_0;
  q.rows = N;
  q.cols = K;
  q.data = Tensor::empty_persistent({N, kernels::row_bytes(q.format, K)}, DType::U8);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* block = q.data.data<uint8_t>() + (n * blocks + b) * 18;
      const uint16_t d = f32_to_f16(scales.f32()[n * blocks + b]);
      std::memcpy(block, &d, 2);
      std::memcpy(block + 2, nibbles.data<uint8_t>() + n * (K / 2) + b * 16, 16);
    }
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
  nlohmann::json formats = nlohmann::json::object();
  for (Parameter* p : params.list()) {
    if (p->quantized) {
      tensors.emplace_back("model." + p->name, p->quantized->data);
      if (p->quantized->scale.defined())
        tensors.emplace_back("model." + p->name + kScaleSuffix, p->quantized->scale);
      formats[p->name] = kernels::format_name(p->quantized->format);
    } else {
      tensors.emplace_back("model." + p->name, p->value);
    }
  }
  for (auto& [name, t] : optimizer_state) tensors.emplace_back("optim." + name, t);
  nlohmann::json meta = {{"format_version", kFormatVersion},    {"model_config", info.model_config},
                         {"train_config", info.train_config},   {"src_tokenizer", info.src_tokenizer},
                         {"tgt_tokenizer", info.tgt_tokenizer}, {"hf_family", info.hf_family},
                         {"state", state_to_json(info.state)},  {"optimizer_steps", optimizer_steps}};
  with_context("saving checkpoint " + path, [&] {
    save_safetensors(path, tensors, {{"tfm", meta.dump()}, {kFormatsKey, formats.dump()}});
  });
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
  std::map<std::string, std::string> formats;
  if (auto it = file.metadata().find(kFormatsKey); it != file.metadata().end()) try {
      formats = nlohmann::json::parse(it->second).get<std::map<std::string, std::string>>();
    } catch (const nlohmann::json::exception& e) {
      fail("{}: malformed '{}' metadata: {}", path, kFormatsKey, e.what());
    }
  std::string problems;
  for (Parameter* p : params.list()) {
    std::string name = "model." + p->name;
    if (!file.contains(name)) {
      problems += fmt::format("\n  missing tensor '{}'", name);
      continue;
    }
    const auto format = formats.find(p->name);
    std::optional<kernels::QuantizedWeight> q = with_context(path, [&] {
      return format != formats.end()
                 ? std::optional(stored_as(file, name, p->shape(), kernels::format_named(format->second)))
                 : stored_before_formats(file, name, p->shape());
    });
    if (q) {
      p->set_quantized(std::make_shared<const kernels::QuantizedWeight>(std::move(*q)));
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
