// Training from a TrainConfig: data, tokenizers and a model built from [model] (or loaded from
// train.init_from), the objective its architecture calls for (train/objective.h: translation, causal or
// masked language modelling), Adam(W) with a schedule and clipping, validation, metrics (JSONL) and
// atomic checkpoints that resume exactly.
//
// A run folder holds:
//   checkpoint.safetensors  the latest state (model, optimizer, step, data position, RNG, config, tokenizers)
//   best.safetensors        the model of the best evaluation so far (train.best_metric), no optimizer state
//   test.hyp                the test corpus translated by the best model when training ends
//   metrics.jsonl           one JSON object per logged step, per evaluation and for the final test
//   config.json             the full configuration of the run
//   tokenizer.json          the BPE tokenizer trained on the corpus (train/tokenizers.h)
//   train.tokens            the training corpus tokenised (data/token_file.h): reused on resume, rebuilt
//   valid.tokens            when the corpus or the tokenizers change; the validation corpus likewise
#pragma once

#include <cstdint>
#include <string>

#include "dist/communicator.h"
#include "train/config.h"

namespace tfm::train {

struct RunOptions {
  std::string resume_dir;  // non-empty: continue the run saved there (its config is used)
  int64_t max_steps = 0;   // non-zero: overrides the config's train.max_steps (e.g. to extend a run)
  bool quiet = false;      // no progress output (tests)
  // Skip a batch whose loss or gradient norm is not finite instead of stopping (20 in a row still stop).
  bool skip_nonfinite = false;
  // The ranks of a data-parallel run (dist::world() under mpirun); null: this process alone. Rank 0 logs,
  // evaluates and writes the run folder; every rank trains on its shards of each batch.
  dist::Communicator* comm = nullptr;
};

struct RunSummary {
  std::string run_dir;
  int64_t steps = 0;           // optimizer steps done in total
  double last_loss = 0;        // training loss of the last step
  double valid_loss = 0;       // at the last evaluation (NaN if none ran)
  bool interrupted = false;    // stopped by SIGINT/SIGTERM (a checkpoint was saved)
  bool stopped_early = false;  // stopped by train.early_stopping
  int64_t best_step = -1;      // the step of best.safetensors (-1: none)
  double valid_bleu = 0;       // at the last evaluation, when computed
  double test_bleu = 0;        // of the final test translation, when made
  int64_t skipped_nonfinite = 0;
  int64_t skipped_overflow = 0;  // float16: steps skipped because a gradient overflowed the loss scale
  int64_t skipped_too_long = 0;
  double optimizer_bytes_per_rank = 0;  // Adam's moments on the rank that holds the most
};

RunSummary run_training(const TrainConfig& config, const RunOptions& options);

// Loads the configuration saved in a run folder (for --resume).
TrainConfig load_run_config(const std::string& run_dir);

}  // namespace tfm::train
