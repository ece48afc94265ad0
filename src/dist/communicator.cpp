#include "dist/communicator.h"

#include <unistd.h>

#include <bit>
#include <cstdlib>

#include "dist/single_process.h"
#ifdef TFM_WITH_MPI
#include "dist/mpi_communicator.h"
#endif

namespace tfm::dist {

std::string SingleProcess::host() const {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

void SingleProcess::abort(int code) { std::_Exit(code); }

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(var); v && std::atoi(v) > 1) return true;
  return false;
}

Communicator& world() {
#ifdef TFM_WITH_MPI
  if (launched_by_mpi()) {
    static MpiCommunicator mpi;
    return mpi;
  }
#else
  if (launched_by_mpi())
    fail(
        "tfm was started as one of several MPI ranks, but this build has no MPI (install libopenmpi-dev "
        "and rebuild)");
#endif
  static SingleProcess single;
  return single;
}

std::vector<int64_t> even_counts(int64_t total, int parts) {
  std::vector<int64_t> counts(size_t(parts), total / parts);
  for (int64_t r = 0; r < total % parts; ++r) ++counts[size_t(r)];
  return counts;
}

size_t pairwise_split(size_t n) { return std::bit_floor(n - 1); }

double pairwise_sum(std::span<const double> values) {
  if (values.empty()) return 0;
  if (values.size() == 1) return values[0];
  const size_t half = pairwise_split(values.size());
  return pairwise_sum(values.first(half)) + pairwise_sum(values.subspan(half));
}

}  // namespace tfm::dist
