// The training progress line: step, epoch, loss, lr, tokens/s, elapsed and ETA. On a terminal it
// rewrites itself in place; otherwise (CI logs, pipes) it prints plain lines.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace tfm::train {

struct ProgressFields {
  int64_t step = 0, max_steps = 0, epoch = 0;
  double loss = 0, lr = 0, tokens_per_second = 0, elapsed_seconds = 0;
};

class Progress {
 public:
  explicit Progress(FILE* out);
  void update(const ProgressFields& f);
  // Prints a whole line (an evaluation result, a sample) without breaking the progress display.
  void message(const std::string& line);
  void finish();

 private:
  FILE* out_;
  bool tty_;
  bool line_open_ = false;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace tfm::train
