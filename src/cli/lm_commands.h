// tfm generate, tfm perplexity, tfm inspect, tfm quantize and tfm export: language-model and model-folder
// commands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "infer/generate.h"

namespace tfm::cli {

struct GenerateCommandOptions {
  std::string model_dir, prompt;
  infer::GenerateOptions generate;  // rules.eos_id is taken from the model
};

// Prints the prompt and its continuation to stdout as the tokens come (then a newline).
int cmd_generate(GenerateCommandOptions options);

// Prints {"perplexity": ..., "tokens": ...} (infer/lm_perplexity.h semantics).
// extrapolate: a context past the model's max_len is allowed (Transformer::extend_positions).
int cmd_perplexity(const std::string& model_dir, const std::string& file, int64_t context, int64_t stride,
                   bool extrapolate);

// Prints the architecture, sizes, parameter count and the dtypes stored in model.safetensors.
int cmd_inspect(const std::string& model_dir);

// Writes the model at `model_path` with its projection weights quantized (`type` int8, int4 or bf16) as a tfm
// checkpoint in out_dir/checkpoint.safetensors, usable wherever a run folder is.
int cmd_quantize(const std::string& model_path, const std::string& type, const std::string& out_dir);

// tfm lora merge: the adapters folded into the base weights, written as a checkpoint in out_dir.
int cmd_lora_merge(const std::string& model_path, const std::string& out_dir);
// tfm lora export: the adapters alone in PEFT's layout; `family` names the Hugging Face layout of the
// tensor names (default: the model's own family when it has one, else tfm's names).
int cmd_lora_export(const std::string& model_path, const std::string& family, const std::string& base_model,
                    const std::string& out_dir);

// Writes the model at `model_path` as a Hugging Face folder (models/export_hf.h) and says which layout.
int cmd_export(const std::string& model_path, const std::string& out_dir, const std::string& layout);

}  // namespace tfm::cli
