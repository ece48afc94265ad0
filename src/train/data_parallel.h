// Data parallelism: every rank runs forward and backward on its shards of the batch, and the gradients are
// summed across ranks before clipping, so that N ranks take the step one process takes on the whole batch.
//
// The trainable parameters' gradients live in one flat buffer (each Parameter's grad is a view of it, 64-byte
// aligned and padded as every Tensor), laid out in the order backward completes them (the parameters' reverse
// order) and cut into buckets of about train.bucket_mb. A bucket's all-reduce starts as soon as backward has
// produced all of its gradients (autograd's BackwardHooks), buckets strictly in order on every rank, and
// backward tests them after every node so that they move on while it computes; finish_backward() waits for
// the rest. bucket_mb = 0: one all-reduce after backward (nothing overlapped; the benchmark's reference).
//
// A rank with several shards (train.shards larger than the ranks) sums them pairwise in shard order, as the
// communicator sums the ranks, so a run with 2^k shards per rank gives the same bits on any number of ranks
// (one process included). Its all-reduce then waits for the last shard (no overlap).
//
// ZeRO-1 (`zero`): the parameters are split into one contiguous range of the layout per rank; the gradients
// are reduce-scattered, each rank clips and updates its own range (its optimizer holds the moments of that
// range only: memory / N), and the updated values are all-gathered into every rank's model.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "dist/communicator.h"
#include "nn/parameter.h"
#include "train/optimizer.h"

namespace tfm::train {

struct DataParallelOptions {
  double bucket_mb = 25;  // 0: a single all-reduce after backward
  bool zero = false;      // ZeRO-1: optimizer state sharded across ranks
};

// What one step communicated.
struct CommStats {
  double bytes = 0;         // floats this rank all-reduced (or reduce-scattered + all-gathered), in bytes
  double wait_seconds = 0;  // waited for communication after backward (not hidden behind it)
};

class GradientSync {
 public:
  // `params`: the model's parameters; the trainable ones take part (their grads become views of the flat
  // buffer, so make the optimizer after this).
  GradientSync(const ParameterList& params, dist::Communicator& comm, const DataParallelOptions& options);
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The parameters this rank updates: its ZeRO range, or every trainable one.
  const ParameterList& owned() const { return owned_; }
  int64_t elements() const { return int64_t(flat_.size()); }
  int64_t owned_elements() const { return owned_count_; }

  // Zeroes the gradients. `local_shards`: how many shards this rank runs this step.
  void begin_step(int64_t local_shards);
  // Between two shards of this rank: keeps the finished shard's gradients aside and zeroes them.
  void next_shard();
  // The hooks that start the buckets during the last shard's backward (empty when that cannot overlap).
  ag::BackwardHooks hooks();
  // After the last shard's backward (or instead of it, for a rank whose shards were empty or whose loss
  // was not finite): sums the gradients across ranks and waits.
  void finish_backward();
  // Scales the summed gradients by `unscale` and clips them to the global L2 norm max_norm
  // (train/optimizer.h's clip_grad_norm); returns the norm before clipping (non-finite: gradients untouched).
  double clip(float max_norm, float unscale);
  // ZeRO: shares the updated parameter values; otherwise nothing.
  void after_update();
  CommStats take_stats();

  // The optimizer's moments of every trainable parameter, on rank 0 (gathered from their owners under ZeRO;
  // the other ranks get an empty map). Collective.
  std::map<std::string, Tensor> full_optimizer_state(const Adam& optimizer);

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;  // in flat_
    int64_t waiting = 0;         // gradients not yet complete
    int64_t params = 0;
    dist::Request request = -1;
  };
  void param_ready(Parameter& p);
  void launch_ready_buckets();
  void poll();

  dist::Communicator& comm_;
  DataParallelOptions options_;
  ParameterList trainable_;                     // in layout order
  std::map<const Parameter*, int64_t> offset_;  // in flat_
  std::map<const Parameter*, size_t> bucket_of_;
  Tensor storage_;
  std::span<float> flat_;  // storage_: every trainable gradient in layout order, each padded to 64 bytes
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0, next_done_ = 0;  // buckets started, and completed, so far
  // ZeRO: each rank's element count and this rank's range.
  std::vector<int64_t> counts_;
  int64_t owned_begin_ = 0, owned_count_ = 0;
  ParameterList owned_;
  // Shards of this rank so far: pairwise partial sums, level l holding 2^l shards (a binary counter).
  std::vector<std::vector<float>> levels_;
  int64_t local_shards_ = 1;
  CommStats stats_;
};

}  // namespace tfm::train
