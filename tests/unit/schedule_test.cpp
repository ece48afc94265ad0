#include "train/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace tfm::train {
namespace {

ScheduleOptions options(ScheduleKind kind, int64_t warmup, int64_t total = 0) {
  ScheduleOptions o;
  o.kind = kind;
  o.peak_lr = 1e-3f;
  o.warmup_steps = warmup;
  o.total_steps = total;
  return o;
}

TEST(Schedule, InverseSqrtKnownValues) {
  const ScheduleOptions o = options(ScheduleKind::InverseSqrt, 1000);
  EXPECT_FLOAT_EQ(learning_rate(o, 500), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 1000), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(o, 4000), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 1), 1e-6f);
  EXPECT_FLOAT_EQ(learning_rate(o, 16000), 2.5e-4f);
}

TEST(Schedule, InverseSqrtWithoutWarmup) {
  const ScheduleOptions o = options(ScheduleKind::InverseSqrt, 0);
  EXPECT_FLOAT_EQ(learning_rate(o, 1), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(o, 4), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 100), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 7), float(1e-3 / std::sqrt(7.0)));
}

TEST(Schedule, CosineEndpointsAndMidpoint) {
  ScheduleOptions o = options(ScheduleKind::Cosine, 100, 1100);
  o.min_lr = 1e-5f;
  EXPECT_FLOAT_EQ(learning_rate(o, 50), 5e-4f);                      // warmup
  EXPECT_FLOAT_EQ(learning_rate(o, 100), 1e-3f);                     // peak
  EXPECT_FLOAT_EQ(learning_rate(o, 600), float((1e-3 + 1e-5) / 2));  // half way through the decay
  EXPECT_FLOAT_EQ(learning_rate(o, 1100), 1e-5f);                    // floor
  EXPECT_FLOAT_EQ(learning_rate(o, 5000), 1e-5f);                    // stays at the floor
  const double quarter = 1e-5 + (1e-3 - 1e-5) * (1 + std::cos(std::numbers::pi / 4)) / 2;
  EXPECT_FLOAT_EQ(learning_rate(o, 350), float(quarter));
}

TEST(Schedule, CosineWithoutWarmupStartsNearPeak) {
  const ScheduleOptions o = options(ScheduleKind::Cosine, 0, 10);
  EXPECT_FLOAT_EQ(learning_rate(o, 5), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 10), 0.0f);
  EXPECT_GT(learning_rate(o, 1), 9.7e-4f);
}

TEST(Schedule, ConstantWithWarmup) {
  const ScheduleOptions o = options(ScheduleKind::Constant, 10);
  EXPECT_FLOAT_EQ(learning_rate(o, 1), 1e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 5), 5e-4f);
  EXPECT_FLOAT_EQ(learning_rate(o, 10), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(o, 123456), 1e-3f);
  EXPECT_FLOAT_EQ(learning_rate(options(ScheduleKind::Constant, 0), 1), 1e-3f);
}

TEST(Schedule, RejectsBadInput) {
  EXPECT_THROW(learning_rate(options(ScheduleKind::Constant, 0), 0), Error);
  EXPECT_THROW(learning_rate(options(ScheduleKind::Cosine, 100, 100), 5), Error);
}

TEST(Schedule, ParsesNames) {
  EXPECT_EQ(parse_schedule("constant"), ScheduleKind::Constant);
  EXPECT_EQ(parse_schedule("inverse_sqrt"), ScheduleKind::InverseSqrt);
  EXPECT_EQ(parse_schedule("cosine"), ScheduleKind::Cosine);
  try {
    parse_schedule("linear");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'linear'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("inverse_sqrt"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tfm::train
