// Reading the segments that the metrics score: one per line of a plain or gzip text file, optionally one
// tab-separated column of a TSV file.
#pragma once

#include <string>
#include <vector>

namespace tfm::metrics {

// The lines of `path` (plain or .gz; "\r\n" reads as "\n"). column 0: whole lines; column N >= 1: the
// N-th tab-separated field of each line. Throws tfm::Error naming the file and line when a line is not
// valid UTF-8 (with the byte offset) or has fewer than N fields.
std::vector<std::string> read_segments(const std::string& path, int column = 0);

}  // namespace tfm::metrics
