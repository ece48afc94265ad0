#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tfm::train {
namespace {

// Fraction of the peak during linear warmup (1 once warmup is over or when there is none).
double warmup_factor(const ScheduleOptions& o, int64_t step) {
  if (o.warmup_steps <= 0 || step >= o.warmup_steps) return 1.0;
  return double(step) / double(o.warmup_steps);
}

double inverse_sqrt(const ScheduleOptions& o, int64_t step) {
  const double s = double(step);
  if (o.warmup_steps <= 0) return o.peak_lr / std::sqrt(s);
  const double w = double(o.warmup_steps);
  return o.peak_lr * std::min(s / w, std::sqrt(w / s));
}

double cosine(const ScheduleOptions& o, int64_t step) {
  if (o.total_steps <= o.warmup_steps)
    fail("cosine schedule: total_steps ({}) must exceed warmup_steps ({})", o.total_steps, o.warmup_steps);
  if (step <= o.warmup_steps) return o.peak_lr * warmup_factor(o, step);
  const double progress =
      std::min(1.0, double(step - o.warmup_steps) / double(o.total_steps - o.warmup_steps));
  return o.min_lr + (double(o.peak_lr) - o.min_lr) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
}

}  // namespace

float learning_rate(const ScheduleOptions& o, int64_t step) {
  if (step < 1) fail("learning rate schedule: steps count from 1, got {}", step);
  switch (o.kind) {
    case ScheduleKind::Constant:
      return float(o.peak_lr * warmup_factor(o, step));
    case ScheduleKind::InverseSqrt:
      return float(inverse_sqrt(o, step));
    case ScheduleKind::Cosine:
      return float(cosine(o, step));
  }
  fail("unknown schedule kind {}", int(o.kind));
}

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "constant") return ScheduleKind::Constant;
  if (name == "inverse_sqrt") return ScheduleKind::InverseSqrt;
  if (name == "cosine") return ScheduleKind::Cosine;
  fail("unknown learning rate schedule '{}' (expected constant, inverse_sqrt or cosine)", name);
}

}  // namespace tfm::train
