// Training checkpoints: one safetensors file holding the model's parameters ("model.<name>"; a quantized
// weight as its integers there and its scales in "model.<name>.scale", see kernels/cpu/quantized.h), the
// optimizer's moments ("optim.<name>.exp_avg" / ".exp_avg_sq") and, in its metadata under "tfm", a JSON
// document with the model config, the training config, the tokenizers and the training state (step,
// data position, RNG). Written atomically (io/atomic_file.h): an interrupted or failed save leaves the
// previous checkpoint intact.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "nn/parameter_store.h"
#include "train/optimizer.h"

namespace tfm::io {

struct TrainingState {
  int64_t step = 0;   // optimizer steps done
  int64_t epoch = 0;  // data position: epoch and batch index within it
  int64_t batch_index = 0;
  uint64_t rng_seed = 0;  // dropout: shard k of step s draws from (rng_seed, s, k), see train/step.h
  double tokens_seen = 0;
  double elapsed_seconds = 0;
  // The best validation result so far (train.best_metric): its value, the step it came at (0: none yet),
  // (-1: none yet) and evaluations since then (for early stopping).
  double best_value = 0;
  int64_t best_step = -1;
  int64_t evaluations_since_best = 0;
  // train.precision = "float16": the dynamic loss scale and its steps since the last change (0: none).
  double loss_scale = 0;
  int64_t loss_scale_good_steps = 0;
};

struct CheckpointInfo {
  nlohmann::json model_config;
  nlohmann::json train_config;  // null for a model saved outside training
  std::string src_tokenizer;    // tokenizer.json texts
  std::string tgt_tokenizer;
  // The Hugging Face family the model came from ("marian", ...; empty for a model tfm trained): its
  // tokenizer frames sentences itself and its decoding rules apply (a quantized HF model keeps them).
  std::string hf_family;
  TrainingState state;
};

void save_checkpoint(const std::string& path, ParameterStore& params, const train::Adam* optimizer,
                     const CheckpointInfo& info);
// The same with the optimizer's moments given as Adam::state() names them (data parallelism gathers them
// from the ranks that hold them).
void save_checkpoint(const std::string& path, ParameterStore& params,
                     const std::map<std::string, Tensor>& optimizer_state, int64_t optimizer_steps,
                     const CheckpointInfo& info);

// Reads the metadata only (cheap); throws tfm::Error naming the file if it is not a tfm checkpoint.
CheckpointInfo read_checkpoint_info(const std::string& path);

// Loads parameters (and optimizer state when given) into an already built model. Every parameter must
// be present with the same shape; otherwise the error names the tensor (a checkpoint of another
// architecture fails here, listing what differs). An optimizer of some of the trainable parameters (a ZeRO
// shard) loads the moments of those.
void load_checkpoint_weights(const std::string& path, ParameterStore& params, train::Adam* optimizer);

}  // namespace tfm::io
