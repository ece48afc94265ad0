#include "serve/scheduler.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace tfm::serve {

namespace {

using Clock = std::chrono::steady_clock;

// One model computes at a time, whichever scheduler runs it: the passes of several models would only share
// the same cores, and a model's forward pass is not meant to run concurrently with another's.
std::mutex& compute_mutex() {
  static std::mutex m;
  return m;
}

// A pass waits for every running sequence to hand in its step, so that they all share it: their search
// work between two steps takes microseconds. It waits at most this long: a sequence whose thread is held
// up (no core free for it, a client reading slowly) joins the next pass instead of holding back the
// others' next token (2 ms against 20 ms: 5,600 against 4,800 tokens/s with 16 clients on lm-kjv).
constexpr auto kGatherWait = std::chrono::milliseconds(2);
// How often a waiting admission asks whether its client went away.
constexpr auto kCancelPoll = std::chrono::milliseconds(20);

// The cross-attention keys and values an encoder-decoder keeps for a source of `length` tokens.
int64_t source_bytes(const ModelConfig& c, int layers, int64_t length) {
  return int64_t(layers) * 2 * length * c.heads * c.attention_head_dim() * int64_t(sizeof(float)) + length;
}

}  // namespace

Scheduler::Scheduler(const Transformer& model, const SchedulerOptions& options)
    : model_(model), options_(options) {
  TFM_CHECK(options.max_running > 0 && options.max_waiting >= 0 && options.kv_budget_bytes > 0 &&
                options.prefill_chunk > 0,
            "scheduler: running {}, waiting {}, budget {}, prefill chunk {}", options.max_running,
            options.max_waiting, options.kv_budget_bytes, options.prefill_chunk);
  counters_.kv_budget = options.kv_budget_bytes;
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  stop();
  thread_.join();
}

void Scheduler::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  work_ready_.notify_all(), room_freed_.notify_all(), job_done_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s = counters_;
  s.waiting = int64_t(waiting_.size()), s.running = running_, s.kv_bytes = kv_bytes_;
  return s;
}

std::unique_ptr<Sequence> Scheduler::admit(int64_t rows, int64_t positions,
                                           const std::vector<int64_t>& source,
                                           const std::function<bool()>& cancelled) {
  const ModelConfig& cfg = model_.config();
  TFM_CHECK(rows > 0 && positions > 0, "admit: {} rows of {} positions", rows, positions);
  if ((cfg.arch == Arch::EncoderDecoder) == source.empty())
    fail("admit: an encoder-decoder sequence needs its source, a decoder-only one has none");
  // Allocated now but untouched until written, so a waiting sequence costs no memory yet.
  infer::KvCache cache = infer::make_kv_cache(model_, 1, positions, rows);
  const int64_t bytes =
      cache.bytes() +
      (source.empty() ? 0 : source_bytes(cfg, model_.decoder_layer_count(), int64_t(source.size())));
  if (bytes > options_.kv_budget_bytes)
    throw OverBudget(fmt::format(
        "the request needs {:.1f} MB of KV cache ({} rows of {} tokens), more than the server's whole "
        "budget of {:.1f} MB (--kv-budget-mb)",
        double(bytes) / 1e6, rows, positions, double(options_.kv_budget_bytes) / 1e6));
  {
    std::unique_lock lock(mutex_);
    if (stopping_) throw Cancelled("the server is shutting down");
    const bool fits_now =
        waiting_.empty() && running_ < options_.max_running && kv_bytes_ + bytes <= options_.kv_budget_bytes;
    if (!fits_now && int64_t(waiting_.size()) >= options_.max_waiting)
      throw QueueFull(
          fmt::format("the server is busy: {} requests run and {} wait, the most it queues "
                      "(--max-queue {})",
                      running_, waiting_.size(), options_.max_waiting));
    const uint64_t ticket = next_ticket_++;
    waiting_.push_back(ticket);
    auto leave_queue = [&] {
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
      room_freed_.notify_all();  // the next in line may fit now
    };
    while (!(waiting_.front() == ticket && running_ < options_.max_running &&
             kv_bytes_ + bytes <= options_.kv_budget_bytes)) {
      if (stopping_) {
        leave_queue();
        throw Cancelled("the server is shutting down");
      }
      if (cancelled && cancelled()) {
        leave_queue();
        throw Cancelled("the client went away");
      }
      room_freed_.wait_for(lock, kCancelPoll);
    }
    leave_queue();
    ++running_, kv_bytes_ += bytes;
  }
  std::unique_ptr<Sequence> sequence(new Sequence(*this, std::move(cache), bytes, cancelled));
  if (!source.empty()) {  // one source at a time: exactly what decoding that sentence alone encodes
    Sequence& s = *sequence;
    run([&] {
      s.source_ = infer::encode_sources(model_, encode_tape_, {source});
    });  // ~Sequence frees on throw
  }
  return sequence;
}

void Scheduler::release(int64_t bytes) {
  std::lock_guard lock(mutex_);
  --running_, kv_bytes_ -= bytes;
  room_freed_.notify_all();
  work_ready_.notify_all();  // a pass gathering steps need not wait for this sequence
}

void Scheduler::run(const std::function<void()>& task) {
  Job job;
  job.task = task;
  run_job(job);
}

void Scheduler::run_job(Job& job) {
  std::unique_lock lock(mutex_);
  if (stopping_) throw Cancelled("the server is shutting down");
  pending_.push_back(&job);
  work_ready_.notify_all();
  job_done_.wait(lock, [&] { return job.done; });
  if (job.error) std::rethrow_exception(job.error);
}

void Scheduler::loop() {
  if (options_.threads > 0) omp_set_num_threads(options_.threads);
  std::vector<Job*> jobs;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (!stopping_) {
        // Let the other running sequences join this pass.
        const auto deadline = Clock::now() + kGatherWait;
        work_ready_.wait_until(lock, deadline,
                               [&] { return stopping_ || int64_t(pending_.size()) >= running_; });
      }
      jobs.swap(pending_);
      if (stopping_) {
        for (Job* job : jobs) job->error = std::make_exception_ptr(Cancelled("the server is shutting down"));
        for (Job* job : jobs) job->done = true;
        job_done_.notify_all();
        if (jobs.empty()) return;
        jobs.clear();
        continue;
      }
    }
    run_pass(jobs);
    std::lock_guard lock(mutex_);
    for (Job* job : jobs) job->done = true;
    jobs.clear();
    job_done_.notify_all();
  }
}

void Scheduler::run_pass(std::vector<Job*>& jobs) {
  std::lock_guard compute(compute_mutex());
  std::vector<infer::RowFeed> feeds;
  std::vector<Job*> decoding;
  for (Job* job : jobs) {
    if (job->task) {
      try {
        job->task();
      } catch (...) {
        job->error = std::current_exception();
      }
      continue;
    }
    feeds.insert(feeds.end(), job->feeds.begin(), job->feeds.end());
    decoding.push_back(job);
  }
  if (decoding.empty()) return;
  try {
    const auto start = Clock::now();
    const Tensor logits = batch_.run(model_, feeds);
    const int64_t vocab = model_.config().tgt_vocab;
    const float* from = logits.f32();
    for (Job* job : decoding) {
      const int64_t n = int64_t(job->feeds.size());
      std::memcpy(job->logits.f32(), from, size_t(n * vocab) * sizeof(float));
      from += n * vocab;
    }
    std::lock_guard lock(mutex_);
    ++counters_.passes, counters_.pass_rows += int64_t(feeds.size());
    counters_.pass_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  } catch (...) {
    for (Job* job : decoding) job->error = std::current_exception();
  }
}

Sequence::Sequence(Scheduler& scheduler, infer::KvCache cache, int64_t bytes, std::function<bool()> cancelled)
    : scheduler_(scheduler), cache_(std::move(cache)), bytes_(bytes), cancelled_(std::move(cancelled)) {}

Sequence::~Sequence() { scheduler_.release(bytes_); }

Tensor Sequence::step(std::span<const int64_t> rows, std::span<const int64_t> tokens) {
  TFM_CHECK(rows.size() == tokens.size(), "step: {} rows, {} tokens", rows.size(), tokens.size());
  std::vector<std::span<const int64_t>> slices;
  for (const int64_t& t : tokens) slices.emplace_back(&t, 1);
  return feed(rows, slices);
}

Tensor Sequence::prefill(std::span<const int64_t> rows, std::span<const std::vector<int64_t>> prompts) {
  return prefill_in_passes(rows, prompts, size_t(scheduler_.options_.prefill_chunk),
                           [&](std::span<const int64_t> live, auto slices) { return feed(live, slices); });
}

Tensor Sequence::feed(std::span<const int64_t> rows, std::span<const std::span<const int64_t>> tokens) {
  if (cancelled_ && cancelled_()) throw Cancelled("the client went away");
  const ModelConfig& cfg = scheduler_.model_.config();
  Scheduler::Job job;
  for (size_t i = 0; i < rows.size(); ++i) {
    // Checked here, so that a bad row fails its own request and never the pass it would have shared.
    if (rows[i] < 0 || rows[i] >= cache_.rows())
      fail("step: row {} is not one of {} rows", rows[i], cache_.rows());
    job.feeds.push_back({.cache = &cache_,
                         .row = rows[i],
                         .tokens = tokens[i],
                         .source = source_.count > 0 ? &source_ : nullptr,
                         .source_index = 0});
    infer::check_room_and_tokens(job.feeds.back(), cfg.tgt_vocab);
  }
  const int64_t n = int64_t(rows.size());
  if (!logits_.defined() || logits_.size(0) < n) logits_ = Tensor::empty_persistent({n, cfg.tgt_vocab});
  job.logits = logits_;
  scheduler_.run_job(job);
  return n == logits_.size(0) ? logits_ : logits_.narrow(0, 0, n);
}

}  // namespace tfm::serve
