// Small model configs in the shapes of the Hugging Face families, for the model and KV-cache tests. The
// sizes are the caller's; each *_layout sets only what makes the family's architecture.
#pragma once

#include "models/config.h"

namespace tfm::test {

struct Sizes {
  int64_t vocab;  // source and target
  int64_t d_model;
  int heads;
  int64_t d_ff;
  int encoder_layers;
  int decoder_layers;
  int64_t max_len;
};

// A config of these sizes without dropout; everything else is ModelConfig's default (the seed's shape).
inline ModelConfig sized(Arch arch, const Sizes& s) {
  ModelConfig c;
  c.arch = arch;
  c.src_vocab = c.tgt_vocab = s.vocab;
  c.d_model = s.d_model;
  c.heads = s.heads;
  c.d_ff = s.d_ff;
  c.encoder_layers = s.encoder_layers;
  c.decoder_layers = s.decoder_layers;
  c.max_len = s.max_len;
  c.dropout = 0.0f;
  return c;
}

// GPT-2: decoder-only, LayerNorm (eps 1e-5) before each block, learned positions, attention biases,
// the output tied to the token table without a bias.
inline ModelConfig gpt2_layout(ModelConfig c) {
  c.arch = Arch::DecoderOnly;
  c.encoder_layers = 0;
  c.norm = NormType::LayerNorm;
  c.norm_eps = 1e-5f;
  c.positions = PositionKind::Learned;
  c.attention_bias = true;
  c.tie_output = true;
  c.output_bias = false;
  return c;
}

// Llama / Mistral on a decoder-only config: RMSNorm, RoPE, grouped-query attention with `kv_heads`,
// SwiGLU, no biases, an untied output; `window` > 0 for Mistral's sliding window.
inline ModelConfig llama_layout(ModelConfig c, int kv_heads, int64_t window) {
  c.norm = NormType::RMSNorm;
  c.norm_bias = false;
  c.positions = PositionKind::RoPE;
  c.kv_heads = kv_heads;
  c.activation = Activation::SwiGLU;
  c.attention_bias = c.ffn_bias = false;
  c.tie_output = false;
  c.sliding_window = window;
  return c;
}

// BLOOM on a GPT-2 layout: ALiBi instead of position embeddings, a LayerNorm on the embeddings.
inline ModelConfig bloom_layout(ModelConfig c) {
  c.positions = PositionKind::ALiBi;
  c.embedding_norm = true;
  return c;
}

}  // namespace tfm::test
