// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): a frozen linear layer W
// plus a trainable low-rank update,
//   y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A [r, in], B [out, r].
// B starts at zero, so training starts from the base model exactly; A as Hugging Face PEFT initialises
// it (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))). Merging folds the update into
// the weight: W' = W + (alpha / r) B A.
#pragma once

#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/context.h"
#include "nn/parameter.h"

namespace tfm::nn {

struct LoraSpec {
  int64_t rank = 0;  // 0: no adapters
  double alpha = 16;
  double dropout = 0;
  // Which projections get adapters, by short name: q, k, v, o (attention), fc1, fc2, gate (feed-forward);
  // Hugging Face's names (q_proj, o_proj, out_proj, up_proj, down_proj, gate_proj, c_attn, c_fc, ...) too.
  std::vector<std::string> targets;
  bool operator==(const LoraSpec&) const = default;
};

// "r=8,alpha=16,dropout=0.05,targets=q,v" (targets last: the commas after it list targets). Throws
// tfm::Error naming the offending part.
LoraSpec parse_lora_spec(const std::string& text);
std::string to_string(const LoraSpec& spec);  // parse_lora_spec(to_string(s)) == s

// tfm's names of the projections a target names ("q" -> q_proj, "down_proj" -> fc2, GPT-2's "c_attn" ->
// q_proj, k_proj, v_proj); throws for an unknown target.
std::vector<std::string> lora_target_projections(const std::string& target);

struct LoraAdapter {
  Parameter* a = nullptr;  // [rank, in]
  Parameter* b = nullptr;  // [out, rank]
  float scale = 0;         // alpha / rank
  float dropout = 0;
};

// The projection with its adapter: x W^T + bias + scale * dropout(x) A^T B^T (one op, ag::lora_linear).
// With integer weights at inference (weight.quantized, no gradient) the update is added to their product.
ag::Var lora_projection(Context& c, const LoraAdapter& lora, Parameter& weight, Parameter* bias, ag::Var x,
                        ag::Var quantized_product = {});

// W + scale * B A for W [out, in], as a new tensor.
Tensor merged_weight(const LoraAdapter& lora, const Tensor& weight);

}  // namespace tfm::nn
