// Learning-rate schedules, as functions of the 1-based step number.
#pragma once

#include <cstdint>
#include <string>

namespace tfm::train {

enum class ScheduleKind { Constant, InverseSqrt, Cosine };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::InverseSqrt;
  float peak_lr = 1e-3f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // cosine: decays to min_lr at total_steps
  float min_lr = 0.0f;      // cosine floor
};

// Constant: peak (after linear warmup if warmup_steps > 0).
// InverseSqrt ("Attention Is All You Need", section 5.3, with the peak made explicit):
//   lr(s) = peak * min(s / warmup, sqrt(warmup / s)); warmup 0 means peak * 1/sqrt(s).
// Cosine: linear warmup to peak, then min + (peak - min) * (1 + cos(pi * progress)) / 2 with
//   progress = (step - warmup) / (total - warmup), held at min after total_steps; needs total > warmup.
// Linear warmup: peak * step / warmup for step < warmup. Computed in double. Throws tfm::Error for
// step < 1 or a cosine schedule with total_steps <= warmup_steps.
float learning_rate(const ScheduleOptions& o, int64_t step);

// "constant" | "inverse_sqrt" | "cosine"; anything else throws tfm::Error listing those.
ScheduleKind parse_schedule(const std::string& name);

}  // namespace tfm::train
