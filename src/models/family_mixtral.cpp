// Hugging Face Mixtral (model_type "mixtral"): the Llama/Mistral block with a sparse mixture-of-experts
// MLP. A router (block_sparse_moe.gate) picks num_experts_per_tok of num_local_experts SwiGLU experts per
// token, w2(silu(w1(x)) * w3(x)), weighted by its softmax renormalised over the chosen ones; training adds
// router_aux_loss_coef times the load-balancing loss (Transformer::load_balancing_loss) when the model
// outputs its router logits (output_router_logits), as MixtralForCausalLM does.
// Checkpoints keep one tensor per expert (block_sparse_moe.experts.E.w1/w2/w3), which is what
// transformers 5 saves too (it fuses them into mlp.experts.gate_up_proj / down_proj only in memory).
#include <regex>

#include "models/family.h"
#include "models/family_llama.h"

namespace tfm {

namespace {

bool mixtral_matches(const nlohmann::json& j) { return j.value("model_type", "") == "mixtral"; }

ModelConfig mixtral_config(const nlohmann::json& j) {
  HfConfig hf(j);
  ModelConfig c = llama_block_config(hf);
  c.sliding_window = hf.get<int64_t>("sliding_window", 0);
  c.experts = hf.need<int>("num_local_experts");
  c.experts_top_k = hf.need<int>("num_experts_per_tok");
  c.ffn_bias = false;
  if (hf.get<float>("router_jitter_noise", 0.0f) != 0.0f)
    fail("config.json: router_jitter_noise is not supported (only 0)");
  c.router_aux_loss_coef =
      hf.get<bool>("output_router_logits", false) ? hf.get<float>("router_aux_loss_coef", 0.001f) : 0.0f;
  c.validate();
  return c;
}

// moe.router -> block_sparse_moe.gate; expert E's fc_gate, fc1, fc2 (gate, up, down) -> w1, w3, w2.
Placement mixtral_placement(const std::string& name, const ModelConfig&) {
  static const std::pair<std::regex, const char*> moe[] = {
      {std::regex(R"(\.moe\.router\.)"), ".block_sparse_moe.gate."},
      {std::regex(R"(\.moe\.experts\.(\d+)\.fc_gate\.)"), ".block_sparse_moe.experts.$1.w1."},
      {std::regex(R"(\.moe\.experts\.(\d+)\.fc1\.)"), ".block_sparse_moe.experts.$1.w3."},
      {std::regex(R"(\.moe\.experts\.(\d+)\.fc2\.)"), ".block_sparse_moe.experts.$1.w2."},
  };
  std::string s = llama_block_name(name);
  for (const auto& [re, replacement] : moe) s = std::regex_replace(s, re, replacement);
  return {.name = s};
}

bool mixtral_ignored(const std::string& name) { return name == "lm_head.weight"; }

}  // namespace

extern const Family kMixtralFamily = {"mixtral", mixtral_matches, mixtral_config, mixtral_placement,
                                      mixtral_ignored};

}  // namespace tfm
