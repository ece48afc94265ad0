#include "train/progress.h"

#include <unistd.h>

#include <cmath>

#include <fmt/format.h>

namespace tfm::train {

Progress::Progress(FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t s = int64_t(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

void Progress::update(const ProgressFields& f) {
  double eta = f.step > 0 ? f.elapsed_seconds / double(f.step) * double(f.max_steps - f.step) : NAN;
  std::string line = fmt::format(
      "step {}/{}  epoch {}  loss {:.4f}  lr {:.2e}  {:.0f} tok/s  elapsed {}  eta {}", f.step, f.max_steps,
      f.epoch, f.loss, f.lr, f.tokens_per_second, format_duration(f.elapsed_seconds), format_duration(eta));
  if (tty_) {
    fmt::print(out_, "\r\x1b[2K{}", line);
    line_open_ = true;
  } else {
    fmt::print(out_, "{}\n", line);
  }
  std::fflush(out_);
}

void Progress::message(const std::string& line) {
  if (line_open_) fmt::print(out_, "\r\x1b[2K");
  fmt::print(out_, "{}\n", line);
  line_open_ = false;
  std::fflush(out_);
}

void Progress::finish() {
  if (line_open_) fmt::print(out_, "\n");
  line_open_ = false;
  std::fflush(out_);
}

}  // namespace tfm::train
