#include "tokenize/training_text.h"

#include <iterator>

#include "metrics/segment_file.h"

namespace tfm::tokenize {

std::vector<std::string> read_training_text(std::span<const std::string> paths, int column) {
  std::vector<std::string> texts;
  for (const std::string& path : paths) {
    std::vector<std::string> lines = metrics::read_segments(path, column);
    texts.insert(texts.end(), std::make_move_iterator(lines.begin()), std::make_move_iterator(lines.end()));
  }
  return texts;
}

}  // namespace tfm::tokenize
