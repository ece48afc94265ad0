// What Llama, Mistral and Mixtral share (family_llama.cpp, family_mixtral.cpp): the decoder block's
// config.json fields and parameter names.
#pragma once

#include <string>

#include "models/config.h"
#include "models/hf_config.h"

namespace tfm {

// A decoder-only pre-RMSNorm stack with RoPE, grouped-query attention and SwiGLU MLPs, as HF
// LlamaConfig describes it (Mistral and Mixtral add their own fields on top).
ModelConfig llama_block_config(const HfConfig& hf);

// The checkpoint name of a tfm parameter of that stack ("model.layers.N.self_attn.o_proj.weight", ...);
// the MLP names (mlp.* or block_sparse_moe.*) are the caller's.
std::string llama_block_name(const std::string& tfm_name);

}  // namespace tfm
