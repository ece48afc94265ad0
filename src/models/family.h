// A model family is a mapping, not a model: from its config.json onto ModelConfig, and from tfm's
// canonical parameter names onto the tensors its checkpoints hold. Every family runs the one Transformer.
// Families: the seed document's PyTorch code (family_seed.cpp) and Hugging Face model types
// (family_<model_type>.cpp), looked up by config.json's "model_type".
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/config.h"
#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace tfm {

// Where one tfm parameter is stored in a checkpoint. The checkpoint tensor, transposed first when
// `transposed`, holds along its first dimension `groups` equal blocks, each of `parts` equal chunks;
// the parameter is chunk `part` of every block, concatenated. Plain tensors: groups = parts = 1.
// GPT-2's c_attn: transposed (Conv1D stores (in, out)), parts 3 (q, k, v). BLOOM's query_key_value:
// groups = heads, parts 3 (q, k, v interleaved per head).
struct Placement {
  std::string name;
  bool transposed = false;
  int parts = 1;
  int part = 0;
  int groups = 1;
};

struct Family {
  const char* name;  // "seed", or the Hugging Face model_type
  bool (*matches)(const nlohmann::json& config);
  // config.json -> ModelConfig; errors name the missing or unsupported field.
  ModelConfig (*config)(const nlohmann::json& config);
  // Where a tfm parameter of a model built from `config` is stored (fused layouts depend on it).
  Placement (*placement)(const std::string& tfm_name, const ModelConfig& config);
  // Checkpoint tensors tfm does not load: buffers it recomputes, extra copies of tied weights.
  bool (*ignored)(const std::string& checkpoint_name);
};

// The family that understands this config.json, or nullptr. A config naming a model_type no family
// knows is an error naming it.
const Family* find_family(const nlohmann::json& config);
// The family of that name ("marian", "gpt2", ...), or nullptr.
const Family* find_family_named(const std::string& name);
// "gpt2, marian, ..." (for messages).
std::string known_model_types();

// Copies every parameter of `model` from `file` (a safetensors path) through `family`'s placements,
// converting float16 / bfloat16 / float64 to float32. One error lists every missing and every
// unexpected tensor by name, and every shape mismatch with the tensor and both shapes (leading
// 1-dimensions are ignored: Marian's final_logits_bias is stored [1, vocab]). Returns each parameter's
// stored dtype, by parameter name.
std::map<std::string, DType> load_family_weights(Transformer& model, const std::string& file,
                                                 const Family& family);

// The model's parameters (or, with `gradients`, their gradients) in the family's checkpoint layout:
// the inverse of load_family_weights, one tensor per checkpoint name, in parameter order.
std::vector<std::pair<std::string, Tensor>> checkpoint_tensors(Transformer& model, const Family& family,
                                                               bool gradients);

struct Pretrained {
  std::unique_ptr<Transformer> model;
  std::unique_ptr<tokenize::Tokenizer> tokenizer;  // null when the folder has no tokenizer.json
  const Family* family = nullptr;
};

// Loads `dir`/config.json, `dir`/model.safetensors and, when present, `dir`/tokenizer.json; weights stored
// in float16 or bfloat16 stay so where tfm quantize could store them (models/quantize.h). Errors
// name the file: an unknown model_type, a missing config field, missing or unexpected weights (all
// listed), shape mismatches.
Pretrained load_pretrained(const std::string& dir);

}  // namespace tfm
