// Continuous (iteration-level) batching over one model, as Orca (Yu et al., OSDI 2022) and vLLM schedule it.
//
// Each request's sequence owns its KV cache and is driven by its own search loop (greedy, sampling, beam
// search: infer/) on the request's thread, through a Sequence: a DecoderStep whose step() hands its rows to
// the scheduler and waits. The scheduler's one thread gathers the steps of every running sequence and runs
// them as ONE batched forward pass (infer/decode_batch.h), then hands each sequence its logits. A sequence
// joins the running batch at any pass, its prompt fed in chunks of `prefill_chunk` tokens interleaved with
// the others' single tokens, and leaves the moment its search ends (the Sequence is destroyed).
//
// Since every product of a pass is row-invariant, a sequence's logits, and so its greedy or seeded output,
// are bit-identical to decoding it alone (`tfm generate`, `tfm translate`), whatever shares its passes.
//
// Memory: admission reserves the sequence's KV cache (rows x positions, all layers; for an encoder-decoder
// also its source's cross-attention keys) from a byte budget. While the budget or the running batch is
// full, admission waits, first come first served; when `max_waiting` requests already wait, it refuses
// (QueueFull). Destroying the Sequence returns its bytes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "infer/decode_batch.h"
#include "infer/decoder_step.h"
#include "infer/kv_cache.h"
#include "models/transformer.h"

namespace tfm::serve {

struct SchedulerOptions {
  int64_t max_running = 16;                    // sequences decoding at once (`tfm serve --parallel`)
  int64_t max_waiting = 64;                    // sequences waiting for admission at most (`--max-queue`)
  int64_t kv_budget_bytes = int64_t(1) << 30;  // KV-cache bytes of all running sequences (`--kv-budget-mb`)
  int64_t prefill_chunk = 1024;  // prompt tokens of a sequence per pass (as infer::DecoderLimits)
  int threads = 0;               // OpenMP threads of the passes; 0: OpenMP's default
};

// A snapshot of the scheduler (serve/metrics.h exports it).
struct SchedulerStats {
  int64_t waiting = 0, running = 0;     // sequences
  int64_t kv_bytes = 0, kv_budget = 0;  // reserved by running sequences / the budget
  int64_t passes = 0, pass_rows = 0;    // forward passes run, and the rows they fed (sum)
  double pass_seconds = 0;              // time spent in them
};

// Thrown by admit() when max_waiting sequences already wait (HTTP 429 with Retry-After).
class QueueFull : public Error {
 public:
  using Error::Error;
};

// Thrown by admit() when a sequence needs more KV cache than the whole budget: it could never run.
class OverBudget : public Error {
 public:
  using Error::Error;
};

// Thrown by admit() and the Sequence's step() once the request's `cancelled` callback returned true (the
// client went away) or the scheduler is stopping.
class Cancelled : public Error {
 public:
  using Error::Error;
};

class Sequence;

class Scheduler {
 public:
  Scheduler(const Transformer& model, const SchedulerOptions& options);
  ~Scheduler();  // stop(), then joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // A sequence of up to `rows` rows (beams, or `n` completions) of up to `positions` tokens each (prompt
  // included); an encoder-decoder's sequence also needs its `source` (framed token ids), encoded on the
  // scheduler's thread. Waits for room as described above, polling `cancelled` while it waits.
  // Errors: QueueFull, Cancelled, OverBudget.
  std::unique_ptr<Sequence> admit(int64_t rows, int64_t positions, const std::vector<int64_t>& source = {},
                                  const std::function<bool()>& cancelled = {});

  // Runs `task` on the scheduler's thread between two passes, alone (an embedding's forward pass), and
  // rethrows what it threw.
  void run(const std::function<void()>& task);

  // Refuses new sequences and fails every waiting and pending one with Cancelled.
  void stop();
  SchedulerStats stats() const;
  const Transformer& model() const { return model_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  friend class Sequence;
  struct Job {
    std::function<void()> task;         // run(); or else a decoding job:
    std::vector<infer::RowFeed> feeds;  // these rows
    Tensor logits;                      // the result, the sequence's own buffer
    std::exception_ptr error;
    bool done = false;
  };
  // Queues the job for the next pass and waits until it ran (rethrowing its error).
  void run_job(Job& job);
  void release(int64_t bytes);
  void loop();
  void run_pass(std::vector<Job*>& jobs);

  const Transformer& model_;
  const SchedulerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_, job_done_, room_freed_;
  std::deque<uint64_t> waiting_;  // admission tickets, first come first served
  uint64_t next_ticket_ = 0;
  std::vector<Job*> pending_;
  int64_t running_ = 0, kv_bytes_ = 0;
  SchedulerStats counters_;
  bool stopping_ = false;
  infer::DecodeBatch batch_;  // only the scheduler's thread uses it
  ag::Tape encode_tape_;      // the encoder's, on the scheduler's thread
  std::thread thread_;
};

// One admitted sequence: a DecoderStep over its own KV cache whose steps run in the scheduler's passes.
// Used by one request thread at a time.
class Sequence final : public infer::DecoderStep {
 public:
  ~Sequence() override;  // returns its cache's bytes and its place in the running batch

  int64_t vocab_size() const override { return scheduler_.model_.config().tgt_vocab; }
  Tensor step(std::span<const int64_t> rows, std::span<const int64_t> tokens) override;
  // In passes of the scheduler's prefill_chunk tokens per row, each a scheduler pass.
  Tensor prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts) override;
  void reorder(std::span<const int64_t> parents) override { cache_.reorder(parents); }

  int64_t kv_bytes() const { return bytes_; }
  const infer::KvCache& cache() const { return cache_; }

 private:
  friend class Scheduler;
  Sequence(Scheduler& scheduler, infer::KvCache cache, int64_t bytes, std::function<bool()> cancelled);
  // One pass: tokens[offsets[i], offsets[i+1]) to rows[i].
  Tensor feed(std::span<const int64_t> rows, std::span<const std::span<const int64_t>> tokens);

  Scheduler& scheduler_;
  infer::KvCache cache_;
  infer::EncodedSources source_;  // an encoder-decoder's one source (every row attends to it)
  int64_t bytes_;
  std::function<bool()> cancelled_;
  Tensor logits_;  // persistent [rows, vocab] result of the last pass
  std::vector<int64_t> single_;
};

}  // namespace tfm::serve
