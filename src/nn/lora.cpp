#include "nn/lora.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <map>

#include "core/error.h"
#include "kernels/cpu/gemm.h"

namespace tfm::nn {

namespace {

double parse_number(const std::string& key, const std::string& value) {
  double out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size())
    fail("LoRA spec: {}={} is not a number", key, value);
  return out;
}

}  // namespace

std::vector<std::string> lora_target_projections(const std::string& target) {
  static const std::map<std::string, std::vector<std::string>> kNames = {
      {"q", {"q_proj"}},          {"q_proj", {"q_proj"}},   {"k", {"k_proj"}},
      {"k_proj", {"k_proj"}},     {"v", {"v_proj"}},        {"v_proj", {"v_proj"}},
      {"o", {"out_proj"}},        {"o_proj", {"out_proj"}}, {"out_proj", {"out_proj"}},
      {"fc1", {"fc1"}},           {"up_proj", {"fc1"}},     {"c_fc", {"fc1"}},
      {"fc2", {"fc2"}},           {"down_proj", {"fc2"}},   {"gate", {"fc_gate"}},
      {"gate_proj", {"fc_gate"}}, {"fc_gate", {"fc_gate"}}, {"c_attn", {"q_proj", "k_proj", "v_proj"}}};
  const auto it = kNames.find(target);
  if (it == kNames.end())
    fail(
        "LoRA spec: unknown target '{}' (known: q, k, v, o, fc1, fc2, gate and Hugging Face's q_proj, "
        "k_proj, "
        "v_proj, o_proj, out_proj, up_proj, down_proj, gate_proj, c_attn, c_fc)",
        target);
  return it->second;
}

LoraSpec parse_lora_spec(const std::string& text) {
  LoraSpec spec;
  bool in_targets = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string part = text.substr(start, comma - start);
    start = comma + 1;
    if (part.empty()) fail("LoRA spec '{}': empty item", text);
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      if (!in_targets) fail("LoRA spec '{}': '{}' is not key=value", text, part);
      spec.targets.push_back(part);
      continue;
    }
    const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
    in_targets = false;
    if (key == "r" || key == "rank") {
      const double r = parse_number(key, value);
      if (r < 1 || r != double(int64_t(r))) fail("LoRA spec: rank {} must be a whole number >= 1", value);
      spec.rank = int64_t(r);
    } else if (key == "alpha") {
      spec.alpha = parse_number(key, value);
      if (!(spec.alpha > 0)) fail("LoRA spec: alpha {} must be > 0", value);
    } else if (key == "dropout") {
      spec.dropout = parse_number(key, value);
      if (!(spec.dropout >= 0 && spec.dropout < 1)) fail("LoRA spec: dropout {} must lie in [0, 1)", value);
    } else if (key == "targets") {
      in_targets = true;
      spec.targets.push_back(value);
    } else {
      fail("LoRA spec '{}': unknown key '{}' (r, alpha, dropout, targets)", text, key);
    }
  }
  if (spec.rank == 0) fail("LoRA spec '{}': no rank (r=N)", text);
  if (spec.targets.empty()) fail("LoRA spec '{}': no targets (targets=q,v,...)", text);
  for (const std::string& t : spec.targets) lora_target_projections(t);  // checks each
  return spec;
}

std::string to_string(const LoraSpec& spec) {
  return fmt::format("r={},alpha={},dropout={},targets={}", spec.rank, spec.alpha, spec.dropout,
                     fmt::join(spec.targets, ","));
}

ag::Var lora_projection(Context& c, const LoraAdapter& lora, Parameter& weight, Parameter* bias, ag::Var x,
                        ag::Var quantized_product) {
  if (quantized_product.defined())  // inference: no dropout, no gradient
    return ag::add(quantized_product, ag::linear(ag::scale(ag::linear(x, c.tape.param(*lora.a)), lora.scale),
                                                 c.tape.param(*lora.b)));
  return ag::lora_linear(x, c.tape.param(weight), bias ? c.tape.param(*bias) : ag::Var(),
                         c.tape.param(*lora.a), c.tape.param(*lora.b), lora.scale, lora.dropout, c.rng,
                         c.training);
}

Tensor merged_weight(const LoraAdapter& lora, const Tensor& weight) {
  const Tensor& a = lora.a->value;
  const Tensor& b = lora.b->value;
  const int64_t out = weight.shape()[0], in = weight.shape()[1], r = a.shape()[0];
  TFM_CHECK(b.shape()[0] == out && a.shape()[1] == in && b.shape()[1] == r,
            "LoRA merge: A {} and B {} do not fit the weight {}", a.str(), b.str(), weight.str());
  Tensor merged = Tensor::empty_persistent(weight.shape());
  merged.copy_(weight);
  // W' = W + scale * B [out, r] @ A [r, in]
  kernels::gemm(false, false, out, in, r, lora.scale, b.f32(), r, a.f32(), in, 1.0f, merged.f32(), in);
  return merged;
}

}  // namespace tfm::nn
