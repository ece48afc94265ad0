#include "dist/mpi_communicator.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <thread>

namespace tfm::dist {

namespace {

constexpr int kHeartbeatTag = 7177;

int as_count(int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX) fail("MPI: {} of {} elements is more than one message holds", what, n);
  return int(n);
}

// Elementwise pairwise sum of `n` pieces of `len` floats laid end to end, into out (communicator.h's
// order: halves split at the largest power of two below n, left first).
void pairwise_pieces(const float* pieces, int n, int64_t len, float* out) {
  if (n == 1) {
    std::copy(pieces, pieces + len, out);
    return;
  }
  const int half = int(pairwise_split(size_t(n)));
  std::vector<float> right(static_cast<size_t>(len));
  pairwise_pieces(pieces, half, len, out);
  pairwise_pieces(pieces + int64_t(half) * len, n - half, len, right.data());
  for (int64_t i = 0; i < len; ++i) out[i] += right[size_t(i)];
}

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("MPI: MPI_Init_thread failed");
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  host_.assign(name, size_t(length));
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  MPI_Get_library_version(version, &length);
  library_.assign(version, size_t(length));
  if (const size_t cut = library_.find_first_of(",\n"); cut != std::string::npos) library_.resize(cut);
  heard_.assign(size_t(size_), 0);
  heard_at_.assign(size_t(size_), std::chrono::steady_clock::now());
  heard_buffer_.assign(size_t(size_), 0);
  heard_requests_.assign(size_t(size_), MPI_REQUEST_NULL);
  for (int r = 0; r < size_; ++r)
    if (r != rank_)
      check(MPI_Irecv(&heard_buffer_[size_t(r)], 1, MPI_INT64_T, r, kHeartbeatTag, comm_,
                      &heard_requests_[size_t(r)]),
            "MPI_Irecv");
}

MpiCommunicator::~MpiCommunicator() {
  if (finalized_) return;
  // Heartbeats still in flight are cancelled; everything else has been waited for.
  for (MPI_Request& r : heard_requests_)
    if (r != MPI_REQUEST_NULL) MPI_Cancel(&r), MPI_Request_free(&r);
  for (auto& [request, value] : beats_sent_) MPI_Request_free(&request);
  MPI_Comm_free(&comm_);
  MPI_Finalize();
  finalized_ = true;
}

std::string MpiCommunicator::describe() const { return fmt::format("MPI ({})", library_); }

void MpiCommunicator::check(int code, const char* call) const {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail("rank {}: {} failed: {}", rank_, call, std::string(text, size_t(length)));
}

void MpiCommunicator::set_context(const std::string& context) {
  ++beat_;
  contexts_[beat_] = context;
  if (contexts_.size() > 512) contexts_.erase(contexts_.begin());
  send_beat();
}

void MpiCommunicator::send_beat() {
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    auto value = std::make_unique<int64_t>(beat_);
    MPI_Request request;
    check(MPI_Isend(value.get(), 1, MPI_INT64_T, r, kHeartbeatTag, comm_, &request), "MPI_Isend");
    beats_sent_.emplace_back(request, std::move(value));
  }
  last_beat_sent_ = std::chrono::steady_clock::now();
  poll_heartbeats();
}

void MpiCommunicator::poll_heartbeats() {
  for (int r = 0; r < size_; ++r) {
    MPI_Request& request = heard_requests_[size_t(r)];
    int done = 1;
    while (request != MPI_REQUEST_NULL && done) {
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (!done) break;
      heard_[size_t(r)] = heard_buffer_[size_t(r)];
      heard_at_[size_t(r)] = std::chrono::steady_clock::now();
      MPI_Irecv(&heard_buffer_[size_t(r)], 1, MPI_INT64_T, r, kHeartbeatTag, comm_, &request);
    }
  }
  while (!beats_sent_.empty()) {
    int done = 0;
    MPI_Test(&beats_sent_.front().first, &done, MPI_STATUS_IGNORE);
    if (!done) break;
    beats_sent_.pop_front();
  }
}

void MpiCommunicator::timed_out(const std::string& what) {
  poll_heartbeats();
  const std::string here = contexts_.count(beat_) ? contexts_[beat_] : "the start";
  std::string behind;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_ || heard_[size_t(r)] >= beat_) continue;
    const auto it = contexts_.find(heard_[size_t(r)]);
    behind +=
        fmt::format("{}rank {} has not reached {} (last heard: {})", behind.empty() ? "" : "; ", r, here,
                    heard_[size_t(r)] == 0  ? "nothing since it started"
                    : it != contexts_.end() ? it->second
                                            : "long before");
  }
  // Everyone got here: a waiting rank repeats its beat twice a second, so the silent one is stuck.
  const auto now = std::chrono::steady_clock::now();
  const double silent_after = std::min(2.0, timeout_ / 2);
  for (int r = 0; behind.find("has not reached") == std::string::npos && r < size_; ++r) {
    const double silent = std::chrono::duration<double>(now - heard_at_[size_t(r)]).count();
    if (r != rank_ && silent > silent_after)
      behind += fmt::format("{}rank {} has sent nothing for {:.1f} s (stopped, or busy outside MPI)",
                            behind.empty() ? "" : "; ", r, silent);
  }
  if (behind.empty()) behind = fmt::format("every rank reached {} and still answers", here);
  throw Timeout(fmt::format("{}: rank {} waited {:g} s (train.dist_timeout) for {}: {}", here, rank_,
                            timeout_, what, behind));
}

void MpiCommunicator::set_segments(Pending& p, std::span<const int64_t> counts) const {
  TFM_CHECK(int(counts.size()) == size_, "MPI: {}: {} segments for {} ranks", p.what, counts.size(), size_);
  p.displs.assign(size_t(size_), 0);
  for (int r = 0; r < size_; ++r) {
    p.counts.push_back(as_count(counts[size_t(r)], "a segment"));
    if (r > 0) p.displs[size_t(r)] = p.displs[size_t(r - 1)] + p.counts[size_t(r - 1)];
  }
}

Request MpiCommunicator::start(Pending pending) {
  const Request id = next_id_++;
  if (!pending.sum)  // issued already: only when no sum is in flight, or ranks could disagree on the order
    TFM_CHECK(sums_.empty(), "MPI: {} started while sums are in flight", pending.what);
  const bool sum = pending.sum;
  pending_.emplace(id, std::move(pending));
  if (sum) sums_.push_back(id);
  pump();
  return id;
}

void MpiCommunicator::start_sum(Pending& p) {
  // Rank r receives everyone's segment r; sends its segment s to rank s.
  const int mine = p.counts[size_t(rank_)];
  p.pieces.resize(size_t(mine) * size_t(size_));
  std::vector<int> recv_counts(static_cast<size_t>(size_), mine), recv_displs(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) recv_displs[size_t(r)] = r * mine;
  check(MPI_Ialltoallv(p.data.data(), p.counts.data(), p.displs.data(), MPI_FLOAT, p.pieces.data(),
                       recv_counts.data(), recv_displs.data(), MPI_FLOAT, comm_, &p.request),
        "MPI_Ialltoallv");
  p.phase = 0;
}

bool MpiCommunicator::tested(Pending& p) {
  int done = 0;
  check(MPI_Test(&p.request, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

void MpiCommunicator::pump() {
  // Every rank must start its collectives in the same order, which must not depend on when transfers
  // complete: sum k starts once sum k - 1 has started its last phase, so the order is always
  // all-to-all 0, all-gather 0, all-to-all 1, all-gather 1, ...
  bool previous_started = true;
  for (Request id : sums_) {
    Pending& p = pending_.at(id);
    if (p.phase < 0) {
      if (!previous_started) break;
      start_sum(p);
    }
    if (p.phase == 0 && tested(p)) {
      // This rank sums its segment's pieces in rank order.
      const int mine = p.counts[size_t(rank_)];
      pairwise_pieces(p.pieces.data(), size_, mine, p.data.data() + p.displs[size_t(rank_)]);
      std::vector<float>().swap(p.pieces);
      if (p.all_gather_after) {
        check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, p.data.data(), p.counts.data(), p.displs.data(),
                              MPI_FLOAT, comm_, &p.request),
              "MPI_Iallgatherv");
        p.phase = 1;
      } else {
        p.done = true;
      }
    } else if (p.phase == 1 && !p.done && tested(p)) {
      p.done = true;
    }
    previous_started = p.done || p.phase == 1 || !p.all_gather_after;
  }
  while (!sums_.empty() && pending_.at(sums_.front()).done) {
    if (pending_.at(sums_.front()).claimed) pending_.erase(sums_.front());
    sums_.pop_front();
  }
}

bool MpiCommunicator::advance(Pending& p) {
  if (!p.sum) return tested(p);
  pump();
  return p.done;
}

void MpiCommunicator::finish(Request request) {
  Pending& p = pending_.at(request);
  p.claimed = true;
  if (!p.sum || std::find(sums_.begin(), sums_.end(), request) == sums_.end()) pending_.erase(request);
}

Request MpiCommunicator::all_reduce_start(std::span<float> data) {
  Pending p;
  p.what = fmt::format("an all-reduce of {} floats", data.size());
  p.data = data;
  p.sum = p.all_gather_after = true;
  set_segments(p, even_counts(int64_t(data.size()), size_));
  return start(std::move(p));
}

bool MpiCommunicator::test(Request request) {
  auto it = pending_.find(request);
  TFM_CHECK(it != pending_.end(), "MPI: unknown request {}", request);
  if (!advance(it->second)) return false;
  finish(request);
  return true;
}

void MpiCommunicator::wait(Request request) {
  auto it = pending_.find(request);
  TFM_CHECK(it != pending_.end(), "MPI: unknown request {}", request);
  const auto start = std::chrono::steady_clock::now();
  // Poll: MPI moves a transfer on only inside its calls, so spin while a collective is in flight (the first
  // 50 ms: any transfer of a step), then sleep between tests so that a rank left waiting for a slow or
  // stuck one gives its core away.
  for (int64_t polls = 0; !advance(it->second); ++polls) {
    if ((polls & 1023) != 0) continue;
    poll_heartbeats();
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - last_beat_sent_).count() > 0.5)
      send_beat();  // still here, and alive
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout_) timed_out(it->second.what);
    if (waited > 0.05) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  finish(request);
}

void MpiCommunicator::all_reduce(std::span<double> data) {
  Pending p;
  p.what = fmt::format("an all-reduce of {} values", data.size());
  check(MPI_Iallreduce(MPI_IN_PLACE, data.data(), as_count(int64_t(data.size()), "an all-reduce"), MPI_DOUBLE,
                       MPI_SUM, comm_, &p.request),
        "MPI_Iallreduce");
  wait(start(std::move(p)));
}

void MpiCommunicator::reduce_scatter(std::span<float> data, std::span<const int64_t> counts) {
  Pending p;
  p.what = fmt::format("a reduce-scatter of {} floats", data.size());
  p.data = data;
  p.sum = true;
  set_segments(p, counts);
  TFM_CHECK(int64_t(p.displs.back()) + p.counts.back() == int64_t(data.size()), "reduce_scatter: counts");
  wait(start(std::move(p)));
}

void MpiCommunicator::all_gather(std::span<float> data, std::span<const int64_t> counts) {
  Pending p;
  p.what = fmt::format("an all-gather of {} floats", data.size());
  set_segments(p, counts);
  check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, data.data(), p.counts.data(), p.displs.data(), MPI_FLOAT,
                        comm_, &p.request),
        "MPI_Iallgatherv");
  wait(start(std::move(p)));
}

void MpiCommunicator::gather(std::span<float> data, std::span<const int64_t> counts, int root) {
  Pending p;
  p.what = fmt::format("a gather of {} floats to rank {}", data.size(), root);
  set_segments(p, counts);
  TFM_CHECK(int64_t(data.size()) == (rank_ == root ? int64_t(p.displs.back()) + p.counts.back()
                                                   : int64_t(p.counts[size_t(rank_)])),
            "gather: {} floats on rank {}", data.size(), rank_);
  if (rank_ == root)
    check(MPI_Igatherv(MPI_IN_PLACE, 0, MPI_FLOAT, data.data(), p.counts.data(), p.displs.data(), MPI_FLOAT,
                       root, comm_, &p.request),
          "MPI_Igatherv");
  else
    check(MPI_Igatherv(data.data(), p.counts[size_t(rank_)], MPI_FLOAT, nullptr, nullptr, nullptr, MPI_FLOAT,
                       root, comm_, &p.request),
          "MPI_Igatherv");
  wait(start(std::move(p)));
}

std::vector<double> MpiCommunicator::all_gather(std::span<const double> values) {
  std::vector<double> all(values.size() * size_t(size_));
  Pending p;
  p.what = fmt::format("an all-gather of {} values", values.size());
  const int n = as_count(int64_t(values.size()), "an all-gather");
  check(MPI_Iallgather(values.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, comm_, &p.request),
        "MPI_Iallgather");
  wait(start(std::move(p)));
  return all;
}

void MpiCommunicator::broadcast(std::span<std::byte> data, int root) {
  constexpr size_t kChunk = size_t(1) << 30;  // one message holds at most INT_MAX elements
  for (size_t at = 0; at < data.size(); at += kChunk) {
    Pending p;
    p.what = fmt::format("a broadcast of {} bytes from rank {}", data.size(), root);
    check(MPI_Ibcast(data.data() + at, int(std::min(kChunk, data.size() - at)), MPI_BYTE, root, comm_,
                     &p.request),
          "MPI_Ibcast");
    wait(start(std::move(p)));
  }
}

void MpiCommunicator::barrier() {
  Pending p;
  p.what = "a barrier";
  check(MPI_Ibarrier(comm_, &p.request), "MPI_Ibarrier");
  wait(start(std::move(p)));
}

void MpiCommunicator::abort(int code) {
  finalized_ = true;
  MPI_Abort(comm_, code);
  std::_Exit(code);
}

}  // namespace tfm::dist
