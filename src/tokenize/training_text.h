// The texts a tokenizer is trained on: every line of some files, or one tab-separated column of them.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace tfm::tokenize {

// The lines of each file in turn (plain or .gz), without line breaks (a trailing '\r' is dropped too). With
// column > 0, the column-th tab-separated field of each line (1 = the first). Read by metrics::read_segments,
// so it throws tfm::Error naming the file and line for an unreadable file, a line with too few columns, or
// a line that is not valid UTF-8.
std::vector<std::string> read_training_text(std::span<const std::string> paths, int column = 0);

}  // namespace tfm::tokenize
