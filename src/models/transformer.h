// The Transformer, assembled from a ModelConfig out of nn/ modules. The encoder-decoder of
// "Attention Is All You Need" (and of the seed document 004) is one configuration of it.
//
// Parameter names are tfm's canonical ones (Hugging Face BART/Marian style):
//   encoder.embed_tokens.weight, decoder.embed_tokens.weight (shared.weight when shared),
//   {encoder,decoder}.layers.N.self_attn.{q,k,v,out}_proj.{weight,bias}, ...self_attn_layer_norm,
//   decoder.layers.N.encoder_attn.*, ...encoder_attn_layer_norm, ...fc1, ...fc2, ...final_layer_norm,
//   {encoder,decoder}.layer_norm (final norms), lm_head.{weight,bias}.
#pragma once

#include <memory>
#include <vector>

#include "models/config.h"
#include "nn/attention.h"
#include "nn/feed_forward.h"
#include "nn/norm.h"

namespace tfm {

struct EncoderLayer {
  nn::MultiHeadAttention self_attn;
  nn::Norm self_attn_norm;
  nn::FeedForward ffn;
  nn::Norm ffn_norm;
};

struct DecoderLayer {
  nn::MultiHeadAttention self_attn;
  nn::Norm self_attn_norm;
  nn::MultiHeadAttention cross_attn;
  nn::Norm cross_attn_norm;
  nn::FeedForward ffn;
  nn::Norm ffn_norm;
};

// Attention probabilities of the last forward pass, per layer: [batch, heads, q_len, k_len].
struct AttentionMaps {
  std::vector<Tensor> encoder_self, decoder_self, decoder_cross;
};

class Transformer {
 public:
  explicit Transformer(const ModelConfig& config);
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return config_; }
  ParameterStore& parameters() { return params_; }

  // The seed's initialisation: Xavier-uniform for every matrix (embeddings included), PyTorch's
  // Linear default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases, ones and zeros for norms.
  void init_weights(uint64_t seed);

  // src_ids [batch, src_len] -> encoder output [batch, src_len, d_model].
  ag::Var encode(nn::Context& c, const Tensor& src_ids) const;
  // Decoder output [batch, tgt_len, d_model] for decoder inputs tgt_ids, attending to memory.
  ag::Var decode(nn::Context& c, ag::Var memory, const Tensor& src_ids, const Tensor& tgt_ids) const;
  // Logits [..., tgt_vocab].
  ag::Var project(nn::Context& c, ag::Var hidden) const;
  // Mean label-smoothed cross-entropy of a batch (labels == pad_id ignored).
  ag::Var loss(nn::Context& c, const Tensor& src_ids, const Tensor& tgt_in, const Tensor& labels,
               float label_smoothing) const;

  // When on, forward passes keep every attention layer's probabilities in attention_maps().
  void set_keep_attention(bool on);
  const AttentionMaps& attention_maps() const { return maps_; }

  // U8 [batch, len]: 1 where ids != pad_id.
  Tensor key_valid(const Tensor& ids) const;

 private:
  ag::Var embed(nn::Context& c, const Parameter& table, const Tensor& ids) const;
  template <typename F>
  ag::Var sublayer(nn::Context& c, ag::Var x, const nn::Norm& norm, F f) const;

  ModelConfig config_;
  ParameterStore params_;
  Parameter* src_embed_ = nullptr;
  Parameter* tgt_embed_ = nullptr;
  std::vector<EncoderLayer> encoder_;
  std::vector<DecoderLayer> decoder_;
  nn::Norm encoder_norm_, decoder_norm_;
  Parameter* lm_head_weight_ = nullptr;  // the target table itself when tie_output
  Parameter* lm_head_bias_ = nullptr;
  Tensor positions_;
  AttentionMaps maps_;
};

}  // namespace tfm
