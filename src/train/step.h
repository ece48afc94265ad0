// One optimizer step: forward and backward of this rank's shards of the batch, the gradients summed across
// ranks (train/data_parallel.h), clipping to the global norm, loss scaling, and the update. Every rank takes
// the same decisions (skip, stop) from values they all see, so they never part ways.
//
// Loss: the batch's mean over its predicted tokens. Shard k's backward starts from its own mean times its
// share of the batch's predicted tokens (times the loss scale), so the shards' gradients add up to the
// gradient of the batch's mean; in a single process with one shard that is the mean itself.
#pragma once

#include <cstdint>
#include <string>

#include "autograd/tape.h"
#include "data/epoch_order.h"
#include "dist/communicator.h"
#include "kernels/cpu/gemm.h"
#include "models/transformer.h"
#include "train/data_parallel.h"
#include "train/loss_scaler.h"
#include "train/objective.h"
#include "train/optimizer.h"

namespace tfm::train {

struct StepSetup {
  Transformer& model;
  Objective& objective;
  Adam& optimizer;
  GradientSync& sync;
  dist::Communicator& comm;
  ag::Tape& tape;
  LossScaler* scaler = nullptr;  // float16 only
  kernels::GemmPrecision precision = kernels::GemmPrecision::F32;
  data::RowShards shards;  // this rank's shards of every batch
  float clip_norm = INFINITY;
  uint64_t rng_seed = 0;  // dropout: shard k of step s draws from (rng_seed, s, k)
};

struct StepOutcome {
  BatchInfo batch;
  double cross_entropy = 0;  // the batch's mean (every shard's, summed pairwise in shard order)
  double aux_loss = 0;  // mixture of experts: the shards' load-balancing losses, weighted as their tokens
  double grad_norm = 0;
  bool overflow = false;  // float16: the scaled gradients overflowed; the scaler skipped the step
  std::string nonfinite;  // why the step was skipped (a non-finite loss or gradient norm), if it was
  bool stop = false;      // some rank had a stop signal: all stop after this step
  CommStats comm;
};

// Step number `step` (1-based) at learning rate `lr`. `stop_requested`: this rank got SIGINT / SIGTERM.
StepOutcome run_step(StepSetup& setup, int64_t step, float lr, bool stop_requested);

}  // namespace tfm::train
