// The processes of a data-parallel run and the collectives between them. train/ calls only this
// interface; MPI (dist/mpi_communicator.h) and a single process (below) implement it, NCCL may later.
//
// Every collective is called by every rank in the same order (MPI's rule). All reductions are sums, formed
// in a fixed order whatever the network does (pairwise, rank 0 first: ((r0 + r1) + (r2 + r3)) ...), so that
// runs are bit for bit reproducible.
// Waits end by themselves after `timeout` seconds: they throw dist::Timeout naming the ranks that have
// not reached the collective and the context the caller set (e.g. "step 5"), so a rank that died or hangs
// stops the others instead of blocking them forever.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace tfm::dist {

// A collective that did not complete within the communicator's timeout.
class Timeout : public Error {
 public:
  using Error::Error;
};

// A started non-blocking collective; wait() or test() it before reading or reusing its buffer.
using Request = int64_t;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process", or "MPI (Open MPI 4.1.4)"; and this process's host name.
  virtual std::string describe() const = 0;
  virtual std::string host() const = 0;

  // Where the caller is, for the messages of timeouts ("step 5"). Also announces to the other ranks that
  // this one got there (the heartbeat that names the missing ranks).
  virtual void set_context(const std::string& context) = 0;
  virtual void set_timeout(double seconds) = 0;

  // Sum over ranks of `data`, in place, started now.
  virtual Request all_reduce_start(std::span<float> data) = 0;
  // True once the collective has completed (moves it on: call it while computing).
  virtual bool test(Request request) = 0;
  virtual void wait(Request request) = 0;

  // Blocking collectives. counts[r] is rank r's segment of `data` (segments laid end to end).
  virtual void all_reduce(std::span<double> data) = 0;
  // Rank r's segment of `data` becomes the sum of every rank's segment r; the rest of `data` is undefined.
  virtual void reduce_scatter(std::span<float> data, std::span<const int64_t> counts) = 0;
  // Every rank's segment r becomes rank r's segment r.
  virtual void all_gather(std::span<float> data, std::span<const int64_t> counts) = 0;
  // Rank `root` receives every rank's segment r in its segment r of `data` (the whole layout); on the other
  // ranks `data` is only their own segment.
  virtual void gather(std::span<float> data, std::span<const int64_t> counts, int root) = 0;
  // Every rank's copy of the values of `value` (index = rank).
  virtual std::vector<double> all_gather(std::span<const double> values) = 0;
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the run now (after an error on this one); does not return.
  [[noreturn]] virtual void abort(int code) = 0;
};

// The communicator of this process: MPI's world when tfm was started by mpirun (or srun) and built with
// MPI, the single-process one otherwise. Created on first use, lives until exit.
Communicator& world();
// True when the environment says this process is one rank of several (mpirun's variables), whether or
// not this build has MPI.
bool launched_by_mpi();

// Splits `total` elements into `parts` segments as evenly as possible (the first ones one larger).
std::vector<int64_t> even_counts(int64_t total, int parts);

// The order the reductions promise: n values (n >= 2) are summed as a left part of pairwise_split(n) values
// (the largest power of two below n) plus the rest, each part so again, the left one first.
size_t pairwise_split(size_t n);
// The sum of values[0..n) in that order. The trainer sums its shards' losses so.
double pairwise_sum(std::span<const double> values);

}  // namespace tfm::dist
