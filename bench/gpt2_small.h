// GPT-2 small (124M) as a Hugging Face config.json: the decoder-only shape of issue 6's benchmarks
// (12 layers, 768, 12 heads, vocabulary 50,257), shared by tfm_bench_train and tfm_bench_decode.
#pragma once

#include <nlohmann/json.hpp>

namespace tfm::bench {

inline nlohmann::json gpt2_small_config() {
  return {{"model_type", "gpt2"},
          {"vocab_size", 50257},
          {"n_positions", 1024},
          {"n_embd", 768},
          {"n_layer", 12},
          {"n_head", 12},
          {"activation_function", "gelu_new"},
          {"layer_norm_epsilon", 1e-5},
          {"bos_token_id", 50256},
          {"eos_token_id", 50256}};
}

}  // namespace tfm::bench
