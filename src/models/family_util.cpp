#include "models/family_util.h"

#include <regex>

namespace tfm {

void read_stack(const HfConfig& hf, const StackKeys& keys, Arch arch, ModelConfig& c) {
  TFM_CHECK(arch != Arch::EncoderDecoder, "read_stack reads one stack");
  c.arch = arch;
  c.src_vocab = c.tgt_vocab = hf.need<int64_t>("vocab_size");
  c.d_model = hf.need<int64_t>(keys.hidden);
  c.heads = hf.need<int>(keys.heads);
  const int layers = hf.need<int>(keys.layers);
  c.encoder_layers = arch == Arch::EncoderOnly ? layers : 0;
  c.decoder_layers = arch == Arch::DecoderOnly ? layers : 0;
}

void set_layer_norm(const HfConfig& hf, const char* eps_key, float eps_fallback, NormPosition position,
                    bool final_norm, ModelConfig& c) {
  c.norm = NormType::LayerNorm;
  c.norm_eps = hf.get<float>(eps_key, eps_fallback);
  c.norm_position = position;
  c.final_norm = final_norm;
}

namespace {

Activation activation_named(const char* key, const std::string& name) {
  if (name == "gelu") return Activation::GeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::GeluTanh;
  if (name == "relu") return Activation::ReLU;
  fail("config.json: {} '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)", key, name);
}

}  // namespace

Activation read_activation(const HfConfig& hf, const char* key) {
  return activation_named(key, hf.need<std::string>(key));
}

Activation read_activation(const HfConfig& hf, const char* key, const char* fallback) {
  return activation_named(key, hf.get<std::string>(key, fallback));
}

void read_forced_eos(const HfConfig& hf, ModelConfig& c) {
  c.forced_eos = hf.has("forced_eos_token_id");
  if (c.forced_eos && hf.need<int64_t>("forced_eos_token_id") != c.eos_id)
    fail("config.json: forced_eos_token_id differs from eos_token_id");
}

std::optional<QkvParameter> qkv_parameter(const std::string& tfm_name) {
  static const std::regex qkv(R"(^decoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$)");
  std::smatch m;
  if (!std::regex_match(tfm_name, m, qkv)) return std::nullopt;
  return QkvParameter{
      .layer = m[1].str(), .part = int(std::string("qkv").find(m[2].str())), .kind = m[3].str()};
}

}  // namespace tfm
