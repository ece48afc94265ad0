#include "models/lora_merge.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/family.h"

namespace tfm {

namespace {

constexpr std::string_view kASuffix = ".lora_A.weight";

// "decoder.layers.0.self_attn.q_proj" for an adapter on that projection.
std::string projection_of(const nn::LoraAdapter& a) {
  return a.a->name.substr(0, a.a->name.size() - kASuffix.size());
}

}  // namespace

std::unique_ptr<Transformer> merge_lora(const Transformer& model) {
  if (model.lora_adapters().empty()) fail("the model has no LoRA adapters to merge");
  std::map<std::string, const nn::LoraAdapter*> by_weight;
  for (const nn::LoraAdapter& a : model.lora_adapters()) by_weight[projection_of(a) + ".weight"] = &a;
  ModelConfig config = model.config();
  config.lora.clear();
  auto merged = std::make_unique<Transformer>(config);
  for (Parameter* p : merged->parameters().list()) {
    const Parameter* found = model.parameters().find(p->name);
    TFM_CHECK(found, "LoRA merge: the adapted model has no parameter '{}'", p->name);
    const Parameter& from = *found;
    const auto it = by_weight.find(p->name);
    const Tensor weight = from.float_value();  // a quantized base: widened
    p->value.copy_(it == by_weight.end() ? weight : nn::merged_weight(*it->second, weight));
    p->trainable = from.trainable || it != by_weight.end();
  }
  return merged;
}

void save_peft_adapters(const Transformer& model, const std::string& family_name,
                        const std::string& base_model, const std::string& out_dir) {
  if (model.lora_adapters().empty()) fail("the model has no LoRA adapters to save");
  const nn::LoraSpec spec = nn::parse_lora_spec(model.config().lora);
  const Family* family = family_name.empty() ? nullptr : find_family_named(family_name);
  if (!family_name.empty() && !family) fail("unknown model family '{}'", family_name);

  // Adapters grouped by the checkpoint tensor their projection lives in. A fused tensor (GPT-2's c_attn
  // holds q, k and v as `parts` chunks of its output rows) gets one adapter of the ranks summed: A stacks
  // the parts' A, B places each part's B in its chunk's rows and its own columns, and alpha grows with
  // the rank so that alpha / rank, the scale, stays the same: B' A' = sum of the parts' B A.
  struct Part {
    const nn::LoraAdapter* adapter;
    Placement placement;
  };
  std::map<std::string, std::vector<Part>> by_tensor;
  for (const nn::LoraAdapter& a : model.lora_adapters()) {
    const std::string weight = projection_of(a) + ".weight";
    Placement where = family ? family->placement(weight, model.config()) : Placement{weight};
    if (where.groups != 1)
      fail(
          "{}: the {} layout interleaves it with other projections per head; PEFT has no adapter for such a "
          "slice (merge the adapters instead: tfm lora merge)",
          weight, family_name);
    by_tensor[where.name].push_back({&a, where});
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, int64_t> module_rank;  // by module name ("c_attn", "q_proj")
  for (const auto& [name, parts] : by_tensor) {
    const int64_t r = spec.rank, in = parts[0].adapter->a->value.size(1);
    const int64_t out_part = parts[0].adapter->b->value.size(0), P = parts[0].placement.parts;
    const int64_t rows = out_part * P, cols = r * int64_t(parts.size());
    Tensor a = Tensor::zeros_persistent({cols, in}), b = Tensor::zeros_persistent({rows, cols});
    for (size_t i = 0; i < parts.size(); ++i) {
      const Tensor& pa = parts[i].adapter->a->value;
      const Tensor& pb = parts[i].adapter->b->value;
      std::copy_n(pa.f32(), r * in, a.f32() + int64_t(i) * r * in);
      const int64_t row0 = parts[i].placement.part * out_part;
      for (int64_t o = 0; o < out_part; ++o)
        std::copy_n(pb.f32() + o * r, r, b.f32() + (row0 + o) * cols + int64_t(i) * r);
    }
    const std::string stem = "base_model.model." + name.substr(0, name.size() - std::strlen(".weight"));
    tensors.emplace_back(stem + ".lora_A.weight", a);
    tensors.emplace_back(stem + ".lora_B.weight", b);
    module_rank[stem.substr(stem.rfind('.') + 1)] = cols;
  }
  // Fused tensors have a larger rank than the spec's: PEFT's rank_pattern / alpha_pattern say so.
  nlohmann::json rank_pattern = nlohmann::json::object(), alpha_pattern = nlohmann::json::object();
  std::vector<std::string> modules;
  for (const auto& [module, r] : module_rank) {
    modules.push_back(module);
    if (r == spec.rank) continue;
    rank_pattern[module] = r;
    alpha_pattern[module] = spec.alpha * double(r) / double(spec.rank);
  }
  const nlohmann::json config = {
      {"peft_type", "LORA"},
      {"task_type", model.config().arch == Arch::EncoderDecoder ? "SEQ_2_SEQ_LM" : "CAUSAL_LM"},
      {"base_model_name_or_path", base_model},
      {"r", spec.rank},
      {"lora_alpha", spec.alpha},
      {"rank_pattern", rank_pattern},
      {"alpha_pattern", alpha_pattern},
      {"lora_dropout", spec.dropout},
      {"target_modules", modules},
      {"fan_in_fan_out", family_name == "gpt2"},  // GPT-2's Conv1D stores weights (in, out)
      {"bias", "none"},
      {"inference_mode", true}};
  std::filesystem::create_directories(out_dir);
  io::save_safetensors((std::filesystem::path(out_dir) / "adapter_model.safetensors").string(), tensors);
  io::write_file_atomic((std::filesystem::path(out_dir) / "adapter_config.json").string(),
                        config.dump(2) + "\n");
}

}  // namespace tfm
