// The Transformer, assembled from a ModelConfig out of nn/ modules: an encoder-decoder, a decoder-only
// or an encoder-only stack. The encoder-decoder of "Attention Is All You Need" (and of the seed
// document 004), Marian, GPT-2, Llama, BERT, ... are configurations of it; no family has code here.
//
// Parameter names are tfm's canonical ones (Hugging Face BART/Marian style):
//   encoder.embed_tokens.weight, decoder.embed_tokens.weight (shared.weight when shared),
//   {encoder,decoder}.embed_positions.weight (learned), encoder.embed_token_types.weight,
//   {encoder,decoder}.layernorm_embedding,
//   {encoder,decoder}.layers.N.self_attn.{q,k,v,out}_proj.{weight,bias},
//   ...self_attn.relative_attention_bias.weight (T5, layer 0), ...self_attn_layer_norm,
//   decoder.layers.N.encoder_attn.*, ...encoder_attn_layer_norm, ...fc1, ...fc_gate (SwiGLU), ...fc2,
//   ...moe.router, ...moe.experts.E.{fc1,fc_gate,fc2} (MoE), ...final_layer_norm,
//   {encoder,decoder}.layer_norm (final norms), lm_head.transform.{dense,layer_norm} (BERT),
//   lm_head.{weight,bias}, final_logits_bias (not trained).
#pragma once

#include <deque>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "models/config.h"
#include "nn/attention.h"
#include "nn/feed_forward.h"
#include "nn/lora.h"
#include "nn/norm.h"

namespace tfm {

// Mixture-of-experts feed-forward (Mixtral): a linear router over `experts` feed-forward blocks.
struct MixtureOfExperts {
  nn::Linear router;
  std::vector<nn::FeedForward> experts;
};

// One layer of any stack; decoder layers of an encoder-decoder also attend to the encoder output.
struct TransformerLayer {
  nn::MultiHeadAttention self_attn;
  nn::Norm self_attn_norm;
  bool has_cross_attn = false;
  nn::MultiHeadAttention cross_attn;
  nn::Norm cross_attn_norm;
  nn::FeedForward ffn;  // unused with MoE
  std::unique_ptr<MixtureOfExperts> moe;
  nn::Norm ffn_norm;
};

// Token embeddings plus whatever the config adds at the input: positions, token types, a norm.
struct Embeddings {
  Parameter* tokens = nullptr;
  Parameter* positions = nullptr;    // learned positions
  Parameter* token_types = nullptr;  // BERT's segment embeddings
  Tensor sinusoid;                   // [max_len, d_model] for sinusoidal positions
  bool has_norm = false;
  nn::Norm norm;
};

struct Stack {
  Embeddings embed;
  std::vector<TransformerLayer> layers;
  bool has_final_norm = false;
  nn::Norm final_norm;
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
  const ParameterStore& parameters() const { return params_; }

  // The seed's initialisation: Xavier-uniform for every matrix (embeddings included), PyTorch's
  // Linear default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases, ones and zeros for norms; untrained
  // parameters (final_logits_bias) zero.
  void init_weights(uint64_t seed);

  // The encoder stack (encoder-decoder and encoder-only models): src_ids [batch, src_len] ->
  // [batch, src_len, d_model]. key_valid (U8 [batch, src_len], 1 = real token) defaults to
  // src_ids != pad_id; token_types (I64, same shape) to zeros.
  ag::Var encode(nn::Context& c, const Tensor& src_ids, const Tensor& key_valid = {},
                 const Tensor& token_types = {}) const;
  // The decoder of an encoder-decoder: output [batch, tgt_len, d_model] for decoder inputs tgt_ids,
  // attending to memory; source padding is src_ids == pad_id.
  ag::Var decode(nn::Context& c, ag::Var memory, const Tensor& src_ids, const Tensor& tgt_ids) const;
  // The causal stack of a decoder-only model: ids [batch, len] -> [batch, len, d_model]. key_valid as
  // in encode, but undefined means every token is real.
  ag::Var decode_only(nn::Context& c, const Tensor& ids, const Tensor& key_valid = {}) const;
  // Logits [..., tgt_vocab].
  ag::Var project(nn::Context& c, ag::Var hidden) const;
  // Mixtral's auxiliary loss, without router_aux_loss_coef: HF load_balancing_loss_func over the router
  // logits a forward pass left in Context::router_logits, counting only tokens where key_valid [batch,
  // len] is 1 (undefined: all). MixtralForCausalLM adds router_aux_loss_coef times it to the loss.
  ag::Var load_balancing_loss(std::span<const ag::Var> router_logits, const Tensor& key_valid) const;
  // Mean label-smoothed cross-entropy of an encoder-decoder batch (labels == pad_id ignored).
  ag::Var loss(nn::Context& c, const Tensor& src_ids, const Tensor& tgt_in, const Tensor& labels,
               float label_smoothing) const;

  // ---- Decoding with a KV cache (infer/model_decoder.h drives these; inference only, no gradient)
  int decoder_layer_count() const { return int(decoder_.layers.size()); }
  // Decoder layer `layer`'s cross-attention keys and values of the encoder output memory
  // [batch, src_len, d_model]: each [batch, src_len, heads * head_dim].
  std::pair<Tensor, Tensor> cross_keys_values(nn::Context& c, int layer, ag::Var memory) const;
  // The decoder stack over the new tokens of several rows, flattened as nn::CachedRows describes:
  // ids and positions I64 [T] (positions count from the row's first token); self[l] and cross[l] (empty
  // for a decoder-only model) describe layer l's caches. Returns [1, T, d_model] after the final norm.
  ag::Var decode_cached(nn::Context& c, const Tensor& ids, const Tensor& positions,
                        std::span<const nn::CachedRows> self, std::span<const nn::CachedRows> cross) const;

  // Every attention and feed-forward projection (experts included), in layer order: what weight
  // quantization quantizes and LoRA adapts. Embeddings, the output layer, norms and routers are not among
  // them.
  std::vector<nn::Linear*> projections();
  std::vector<Parameter*> projection_weights();  // their weights
  // The output layer's weight [vocab, d_model] (the target embedding table itself when tied). When it is
  // quantized (tfm quantize --type bf16), inference without gradients multiplies the quantized form.
  Parameter* output_weight() { return lm_head_weight_; }

  // Attaches LoRA adapters (nn/lora.h) to the projections the spec targets: parameters
  // "<projection>.lora_A.weight" [r, in] (PEFT's initialisation, from `seed`) and ".lora_B.weight"
  // [out, r] (zeros), and records the spec in config().lora. Throws if the model has adapters already or
  // no projection matches. A model built from a config with `lora` set has them from the start.
  void add_lora(const nn::LoraSpec& spec, uint64_t seed);
  const std::deque<nn::LoraAdapter>& lora_adapters() const { return lora_; }
  // Freezes every parameter but the adapters' (no gradient, no optimizer state; the gradient buffers of
  // the frozen ones are released).
  void freeze_all_but_lora();

  // Lets the model take sequences of up to max_len positions (more than it was trained on: evaluating
  // extrapolation). Sinusoidal tables are recomputed to that length; RoPE, ALiBi and relative positions
  // are functions of position and need nothing; a learned table has no row past its last (an error).
  void extend_positions(int64_t max_len);

  // When on, forward passes keep every attention layer's probabilities in attention_maps().
  void set_keep_attention(bool on);
  const AttentionMaps& attention_maps() const { return maps_; }

  // U8 [batch, len]: 1 where ids != pad_id.
  Tensor key_valid(const Tensor& ids) const;

 private:
  Stack build_stack(const char* name, Parameter* tokens, int layers, bool cross_attn);
  ag::Var embed(nn::Context& c, const Embeddings& e, const Tensor& ids, const Tensor& token_types) const;
  ag::Var token_embedding(nn::Context& c, Parameter& table, const Tensor& ids) const;
  ag::Var run_stack(nn::Context& c, const Stack& stack, ag::Var x, const nn::AttentionMask& self_mask,
                    ag::Var memory, const nn::AttentionMask& cross_mask) const;
  ag::Var feed_forward(nn::Context& c, const TransformerLayer& l, ag::Var h) const;
  ag::Var mixture_of_experts(nn::Context& c, const MixtureOfExperts& moe, ag::Var h) const;
  template <typename F>
  ag::Var sublayer(nn::Context& c, ag::Var x, const nn::Norm& norm, F f) const;
  template <typename SelfAttention, typename CrossAttention>
  ag::Var run_layers(nn::Context& c, const Stack& stack, ag::Var x, SelfAttention self_attention,
                     CrossAttention cross_attention) const;
  nn::Norm make_norm(const std::string& name, NormType type, bool bias);

  ModelConfig config_;
  std::deque<nn::LoraAdapter> lora_;  // stable addresses: each targeted Linear points at its adapter
  ParameterStore params_;
  std::vector<const Parameter*> norm_params_;  // set to ones / zeros by init_weights
  Stack encoder_, decoder_;
  nn::Linear head_dense_;  // lm_head_transform
  nn::Norm head_norm_;
  Parameter* lm_head_weight_ = nullptr;  // the target table itself when tie_output
  Parameter* lm_head_bias_ = nullptr;
  Parameter* final_logits_bias_ = nullptr;
  AttentionMaps maps_;
};

}  // namespace tfm
