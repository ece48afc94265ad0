// Config readers shared by the Hugging Face family mappings (family_<model_type>.cpp); each family
// passes its own config.json key names.
#pragma once

#include <optional>
#include <string>

#include "models/config.h"
#include "models/hf_config.h"

namespace tfm {

// The config.json keys under which a family stores the stack's sizes.
struct StackKeys {
  const char* hidden;  // d_model
  const char* heads;
  const char* layers;
};

// Sets arch and the vocabulary, width, head and layer counts: the layers go to the encoder of an
// encoder-only stack and to the decoder of a decoder-only one. One vocabulary serves both ends.
void read_stack(const HfConfig& hf, const StackKeys& keys, Arch arch, ModelConfig& c);

// A LayerNorm stack: epsilon from `eps_key` (default `eps_fallback`), the norm's position, and whether
// a final norm follows the last layer.
void set_layer_norm(const HfConfig& hf, const char* eps_key, float eps_fallback, NormPosition position,
                    bool final_norm, ModelConfig& c);

// transformers' ACT2FN names that tfm runs, read from `key` (required, or default `fallback`): "gelu" is
// the exact (erf) GELU; "gelu_new" and "gelu_pytorch_tanh" the tanh approximation.
Activation read_activation(const HfConfig& hf, const char* key);
Activation read_activation(const HfConfig& hf, const char* key, const char* fallback);

// Generation forces eos_id at the length limit when forced_eos_token_id is given; tfm forces only the
// model's own EOS. Reads after eos_id is set.
void read_forced_eos(const HfConfig& hf, ModelConfig& c);

// A decoder-only stack's separate query, key or value projection parameter, for families that store
// the three fused in one tensor per layer (GPT-2's c_attn, BLOOM's query_key_value).
struct QkvParameter {
  std::string layer;  // "N" of decoder.layers.N
  int part;           // 0 query, 1 key, 2 value
  std::string kind;   // "weight" or "bias"
};
// The parts of `tfm_name` when it is "decoder.layers.N.self_attn.{q,k,v}_proj.{weight,bias}".
std::optional<QkvParameter> qkv_parameter(const std::string& tfm_name);

}  // namespace tfm
