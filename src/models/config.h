// ModelConfig: one plain description of every architecture tfm builds. Families (the seed's PyTorch
// code, Hugging Face checkpoints) map their own configs and parameter names onto it (models/family.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "nn/kinds.h"

namespace tfm {

// EncoderDecoder: encoder stack + decoder stack with cross-attention (seed, Marian, T5).
// DecoderOnly: one causal stack (GPT-2, Llama, BLOOM). EncoderOnly: one bidirectional stack (BERT).
enum class Arch { EncoderDecoder, DecoderOnly, EncoderOnly };
enum class NormPosition { Pre, Post };  // pre: x + f(norm(x)) (seed, GPT-2); post: norm(x + f(x)) (paper)
using nn::Activation;
using nn::AttentionKind;
using nn::NormType;
using nn::PositionKind;

struct ModelConfig {
  Arch arch = Arch::EncoderDecoder;
  int64_t src_vocab = 0;  // encoder input vocabulary (single-stack models: equal to tgt_vocab)
  int64_t tgt_vocab = 0;  // decoder input and output vocabulary
  int64_t d_model = 512;
  int heads = 8;
  int kv_heads = 0;      // key/value heads; 0: heads; fewer: grouped-query attention (heads a multiple)
  int64_t head_dim = 0;  // 0: d_model / heads
  int64_t d_ff = 2048;
  int encoder_layers = 6;
  int decoder_layers = 6;
  int64_t max_len = 512;            // longest sequence the positions cover
  float dropout = 0.1f;             // on embeddings and on each sublayer's output before the residual sum
  float attention_dropout = 0.1f;   // on attention probabilities
  float activation_dropout = 0.1f;  // inside the feed-forward block, after the activation

  NormType norm = NormType::SeedLayerNorm;
  NormPosition norm_position = NormPosition::Pre;
  float norm_eps = 1e-6f;
  bool norm_bias = true;        // LayerNorm's beta (RMSNorm has none)
  bool final_norm = true;       // a norm after each stack (pre-norm models)
  bool embedding_norm = false;  // a LayerNorm right after the embeddings (BERT, BLOOM)

  PositionKind positions = PositionKind::SinusoidalInterleaved;
  float rope_theta = 10000.0f;
  int relative_buckets = 32;        // T5Relative
  int relative_max_distance = 128;  // T5Relative

  Activation activation = Activation::ReLU;
  AttentionKind attention = AttentionKind::Softmax;  // of the self-attention (cross-attention: softmax)
  int64_t sliding_window = 0;  // > 0: a query sees only the last `sliding_window` keys (itself included)
  // > 0: the first `global_tokens` positions are global (see every key and are seen by every query,
  // within causality); with a sliding window this is block-sparse attention (kernels/cpu/attention.h).
  int64_t global_tokens = 0;
  bool scale_attention = true;  // scores / sqrt(head_dim) (T5 does not scale)
  bool attention_bias = false;  // q, k, v and output projections have biases
  bool ffn_bias = true;
  bool output_bias = true;            // a trained bias on the output projection (the seed's)
  bool final_logits_bias = false;     // a fixed, untrained bias added to the logits (Marian's buffer)
  bool lm_head_transform = false;     // dense + activation + LayerNorm before the output (BERT's MLM head)
  float embedding_scale = 1.0f;       // token embeddings are multiplied by this (sqrt(d_model) for the seed)
  float output_scale = 1.0f;          // the last hidden state is multiplied by this before the output (T5)
  bool share_embeddings = false;      // one table for source and target tokens (needs one vocabulary)
  bool tie_output = false;            // the output projection is the target embedding table
  int64_t token_types = 0;            // > 0: a token-type embedding table of that many rows (BERT)
  bool freeze_pad_embedding = false;  // the pad token's row gets no gradient (HF's padding_idx)

  int experts = 0;  // > 0: mixture-of-experts FFN with this many experts (Mixtral)
  int experts_top_k = 2;
  float router_aux_loss_coef = 0.0f;

  int64_t pad_id = 0;
  int64_t bos_id = 1;  // the decoder's start token (Marian: its pad token)
  int64_t eos_id = 2;
  bool mask_decoder_padding = true;  // decoder self-attention ignores pad keys (the seed); HF: causal only
  // Masked attention scores as Hugging Face's eager attention treats them (finfo.min added) rather than the
  // seed's masked_fill: they differ only in the gradient of a query that sees no key (left padding under a
  // causal mask), see kernels/cpu/attention.h.
  bool additive_mask = false;
  // Decoding rules that Hugging Face's generate applies for some families (Marian):
  bool forbid_pad = false;  // the pad token is never generated
  bool forced_eos = false;  // the last token the length limit allows is EOS
  // LoRA adapters on some projections (nn/lora.h's spec text, "" = none): the base weights stay as they
  // are and each targeted projection adds its low-rank update.
  std::string lora;

  int key_value_heads() const { return kv_heads > 0 ? kv_heads : heads; }
  int64_t attention_head_dim() const { return head_dim > 0 ? head_dim : d_model / heads; }
  void validate() const;  // throws tfm::Error naming the bad field
};

nlohmann::json to_json(const ModelConfig& c);
// Strict: unknown or missing keys are errors naming the key; `origin` names the source in messages.
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& origin);

}  // namespace tfm
