// A tfm model as a Hugging Face folder: config.json, model.safetensors (float32) and tokenizer.json, in
// one of the layouts `transformers` loads: Marian (MarianMTModel) for an encoder-decoder, GPT-2
// (GPT2LMHeadModel) or Llama / Mistral (LlamaForCausalLM, MistralForCausalLM) for a decoder-only model.
//
// The folder is written from the family mappings of models/family_*.cpp run backwards: the config.json
// is the one whose mapping gives back the model's architecture, and the weights are the model's
// parameters placed as that family stores them. A bias the layout has and the model lacks is written as
// zeros (the same function); a model the layout cannot express (pre-norm as Marian, an embedding scale
// in GPT-2, a trained output bias, ...) is an error naming what differs. For Marian, tokenizer.json gains
// a post-processor that frames each sentence as tfm trained it: <s> sentence </s>.
#pragma once

#include <string>

#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace tfm {

// `layout`: "auto" (Marian for an encoder-decoder; Llama, or Mistral with a sliding window, for an
// RMSNorm/RoPE/SwiGLU decoder; GPT-2 otherwise), "marian", "gpt2" or "llama". Writes into `out_dir`
// (created; files replaced atomically) and returns the model_type written.
std::string export_hf(const Transformer& model, const tokenize::Tokenizer& tokenizer,
                      const std::string& out_dir, const std::string& layout = "auto");

}  // namespace tfm
