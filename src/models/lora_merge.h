// LoRA adapters out of a model: merged into the base weights (a plain model again), or saved alone in
// Hugging Face PEFT's layout.
#pragma once

#include <memory>
#include <string>

#include "models/transformer.h"

namespace tfm {

// A copy of `model` without adapters whose targeted weights are W + (alpha / r) B A (nn/lora.h); every
// other parameter is copied as it is. Throws if the model has no adapters.
std::unique_ptr<Transformer> merge_lora(const Transformer& model);

// Writes adapter_config.json and adapter_model.safetensors (PEFT's layout: tensors named
// "base_model.model.<Hugging Face name>.lora_A.weight" / ".lora_B.weight") for a model of a Hugging Face
// family (`family`: "gpt2", "llama", ...; the names come from its weight map) or, with family empty, with
// tfm's own names. Throws if the model has no adapters.
void save_peft_adapters(const Transformer& model, const std::string& family, const std::string& base_model,
                        const std::string& out_dir);

}  // namespace tfm
