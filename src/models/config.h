// ModelConfig: one plain description of every architecture tfm builds. Families (the seed's PyTorch
// code, and Hugging Face checkpoints later) map their own configs and parameter names onto it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "kernels/cpu/norm.h"

namespace tfm {

enum class Arch { EncoderDecoder };
enum class NormPosition { Pre, Post };  // pre: x + f(norm(x)) (seed code); post: norm(x + f(x)) (paper)
enum class PositionKind { Sinusoidal };
enum class Activation { ReLU };

struct ModelConfig {
  Arch arch = Arch::EncoderDecoder;
  int64_t src_vocab = 0;
  int64_t tgt_vocab = 0;
  int64_t d_model = 512;
  int heads = 8;
  int64_t d_ff = 2048;
  int encoder_layers = 6;
  int decoder_layers = 6;
  int64_t max_len = 512;  // longest sequence the position table covers
  float dropout = 0.1f;
  kernels::NormKind norm = kernels::NormKind::SeedLayerNorm;
  NormPosition norm_position = NormPosition::Pre;
  float norm_eps = 1e-6f;
  bool final_norm = true;  // a norm after each stack (the seed's Encoder.norm / Decoder.norm)
  PositionKind positions = PositionKind::Sinusoidal;
  Activation activation = Activation::ReLU;
  bool attention_bias = false;
  bool ffn_bias = true;
  bool output_bias = true;
  bool scale_embeddings = true;   // multiply embeddings by sqrt(d_model)
  bool share_embeddings = false;  // one table for source and target tokens (needs one vocabulary)
  bool tie_output = false;        // the output projection is the target embedding table
  int64_t pad_id = 0;
  int64_t bos_id = 1;  // the decoder's start token
  int64_t eos_id = 2;

  void validate() const;  // throws tfm::Error naming the bad field
};

nlohmann::json to_json(const ModelConfig& c);
// Strict: unknown or missing keys are errors naming the key; `origin` names the source in messages.
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace tfm
