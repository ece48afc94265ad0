#include "train/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tfm::train {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Elements of a gradient in the flat buffer: its own, rounded up to 64 bytes.
int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

// a <- a + b, elementwise (the left operand holds the earlier shards).
void add_into(std::span<float> a, std::span<const float> b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

}  // namespace

GradientSync::GradientSync(const ParameterList& params, dist::Communicator& comm,
                           const DataParallelOptions& options)
    : comm_(comm), options_(options) {
  for (auto it = params.rbegin(); it != params.rend(); ++it)
    if ((*it)->trainable) trainable_.push_back(*it);
  // One tensor for every gradient; the parameters' grads become views of it, each starting on 64 bytes and
  // padded to a multiple of them as every Tensor's memory is (kernels may rely on both).
  int64_t total = 0;
  for (const Parameter* p : trainable_) total += padded(p->value.numel());
  storage_ = Tensor::zeros_persistent({std::max<int64_t>(total, 1)});
  flat_ = std::span<float>(storage_.f32(), size_t(total));
  const int64_t bucket_elements =
      options.bucket_mb > 0 ? std::max<int64_t>(1, int64_t(options.bucket_mb * 1024 * 1024 / sizeof(float)))
                            : std::max<int64_t>(total, 1);
  int64_t at = 0;
  for (Parameter* p : trainable_) {
    if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= bucket_elements)
      buckets_.push_back(Bucket{at, at});
    offset_[p] = at;
    bucket_of_[p] = buckets_.size() - 1;
    Tensor view = storage_.narrow(0, at, p->value.numel()).view(p->value.shape());
    view.copy_(p->grad);
    p->grad = view;
    at += padded(p->value.numel());
    buckets_.back().end = at;
    ++buckets_.back().params;
  }
  const int ranks = comm.size();
  counts_.assign(size_t(ranks), 0);
  if (options.zero) {
    // Whole parameters per rank, cut where the running total passes (r + 1) / N of the elements.
    int64_t seen = 0;
    int rank = 0;
    for (Parameter* p : trainable_) {
      while (rank < ranks - 1 && seen >= total * (rank + 1) / ranks) ++rank;
      counts_[size_t(rank)] += padded(p->value.numel());
      seen += padded(p->value.numel());
      if (rank == comm.rank()) owned_.push_back(p);
    }
    for (int r = 0; r < comm.rank(); ++r) owned_begin_ += counts_[size_t(r)];
    owned_count_ = counts_[size_t(comm.rank())];
  } else {
    owned_ = trainable_;
    owned_count_ = total;
  }
}

void GradientSync::begin_step(int64_t local_shards) {
  std::fill(flat_.begin(), flat_.end(), 0.0f);
  levels_.clear();
  local_shards_ = local_shards;
  for (Bucket& b : buckets_) b.waiting = b.params, b.request = -1;
  next_launch_ = next_done_ = 0;
}

void GradientSync::next_shard() {
  // Binary counter: the finished shard carries into the levels, summed pairwise (earlier shards left).
  std::vector<float> carry(flat_.begin(), flat_.end());
  size_t level = 0;
  for (; level < levels_.size() && !levels_[level].empty(); ++level) {
    add_into(levels_[level], carry);
    carry.swap(levels_[level]);
    std::vector<float>().swap(levels_[level]);
  }
  if (level == levels_.size()) levels_.emplace_back();
  levels_[level] = std::move(carry);
  std::fill(flat_.begin(), flat_.end(), 0.0f);
}

ag::BackwardHooks GradientSync::hooks() {
  if (comm_.size() == 1 || options_.zero || local_shards_ != 1 || buckets_.size() == 1) return {};
  return {[this](Parameter& p) { param_ready(p); }, [this] { poll(); }};
}

void GradientSync::param_ready(Parameter& p) {
  const auto it = bucket_of_.find(&p);
  if (it == bucket_of_.end()) return;
  --buckets_[it->second].waiting;
  launch_ready_buckets();
}

void GradientSync::launch_ready_buckets() {
  // In bucket order on every rank (collectives must start in the same order everywhere), even if this
  // rank's backward completed a later bucket first.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].waiting == 0) {
    Bucket& b = buckets_[next_launch_++];
    b.request = comm_.all_reduce_start(flat_.subspan(size_t(b.begin), size_t(b.end - b.begin)));
    stats_.bytes += double(b.end - b.begin) * sizeof(float);
  }
}

void GradientSync::poll() {
  while (next_done_ < next_launch_ && comm_.test(buckets_[next_done_].request)) ++next_done_;
}

void GradientSync::finish_backward() {
  if (!levels_.empty()) {
    next_shard();  // the last shard joins the levels; fold them, lowest first: L_high + (... + L_low)
    std::vector<float> sum;
    for (std::vector<float>& level : levels_) {
      if (level.empty()) continue;
      if (!sum.empty()) add_into(level, sum);
      sum.swap(level);
    }
    std::copy(sum.begin(), sum.end(), flat_.begin());
    levels_.clear();
  }
  if (comm_.size() == 1) return;
  const auto start = std::chrono::steady_clock::now();
  if (options_.zero) {
    comm_.reduce_scatter(flat_, counts_);
    stats_.bytes += double(flat_.size()) * sizeof(float);
  } else {
    for (Bucket& b : buckets_) b.waiting = 0;  // whatever backward did not report is complete (zeros)
    launch_ready_buckets();
    for (; next_done_ < buckets_.size(); ++next_done_) comm_.wait(buckets_[next_done_].request);
  }
  stats_.wait_seconds += seconds_since(start);
}

double GradientSync::clip(float max_norm, float unscale) {
  if (!options_.zero || comm_.size() == 1) return clip_grad_norm(owned_, max_norm, unscale);
  // The global norm from every rank's share of the squares.
  const auto start = std::chrono::steady_clock::now();
  double squares = grad_squares(owned_);
  comm_.all_reduce(std::span<double>(&squares, 1));
  stats_.wait_seconds += seconds_since(start);
  const double norm = std::sqrt(squares) * double(unscale);
  clip_to_norm(owned_, norm, max_norm, unscale);
  return norm;
}

void GradientSync::after_update() {
  if (!options_.zero || comm_.size() == 1) return;
  // The gradients are spent: their buffer carries the values, each rank's range from its owner.
  for (const Parameter* p : owned_)
    std::memcpy(flat_.data() + offset_[p], p->value.f32(), size_t(p->value.numel()) * sizeof(float));
  const auto start = std::chrono::steady_clock::now();
  comm_.all_gather(flat_, counts_);
  stats_.wait_seconds += seconds_since(start);
  stats_.bytes += double(flat_.size()) * sizeof(float);
  for (Parameter* p : trainable_)
    std::memcpy(p->value.f32(), flat_.data() + offset_[p], size_t(p->value.numel()) * sizeof(float));
}

CommStats GradientSync::take_stats() { return std::exchange(stats_, CommStats{}); }

std::map<std::string, Tensor> GradientSync::full_optimizer_state(const Adam& optimizer) {
  std::map<std::string, Tensor> state = optimizer.state();
  if (!options_.zero || comm_.size() == 1) return state;
  std::map<std::string, Tensor> full;
  for (const char* moment : {".exp_avg", ".exp_avg_sq"}) {
    // This rank's range of the layout, then rank 0 receives every range in the whole layout.
    std::vector<float> buffer(comm_.rank() == 0 ? flat_.size() : size_t(owned_count_));
    for (const Parameter* p : owned_) {
      const Tensor& t = state.at(p->name + moment);
      std::memcpy(buffer.data() + (comm_.rank() == 0 ? offset_[p] : offset_[p] - owned_begin_), t.f32(),
                  size_t(t.numel()) * sizeof(float));
    }
    comm_.gather(buffer, counts_, 0);
    if (comm_.rank() != 0) continue;
    for (const Parameter* p : trainable_) {
      Tensor t = Tensor::empty_persistent(p->value.shape());
      std::memcpy(t.f32(), buffer.data() + offset_[p], size_t(t.numel()) * sizeof(float));
      full[p->name + moment] = t;
    }
  }
  return full;
}

}  // namespace tfm::train
