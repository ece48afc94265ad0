// Small helpers shared by the benchmark programs.
#pragma once

#include <sys/resource.h>

namespace tfm::bench {

// The process's peak resident set size so far, in MiB.
inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

}  // namespace tfm::bench
