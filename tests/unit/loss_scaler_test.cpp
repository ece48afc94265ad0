#include "train/loss_scaler.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tfm::train {
namespace {

// GradScaler's rule, step by step: an overflow halves the scale and refuses the update; every
// growth_interval-th finite step in a row doubles it; an overflow restarts the count.
TEST(LossScaler, HalvesOnOverflowAndDoublesAfterTheInterval) {
  LossScaler s({.initial_scale = 1024, .growth_interval = 3});
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_FALSE(s.update(false));
  EXPECT_EQ(s.scale(), 512);
  EXPECT_TRUE(s.update(true));
  EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.good_steps(), 2);
  EXPECT_FALSE(s.update(false));  // the count starts again
  EXPECT_EQ(s.scale(), 256);
  EXPECT_EQ(s.good_steps(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.good_steps(), 0);
  for (int i = 0; i < 6; ++i) s.update(true);
  EXPECT_EQ(s.scale(), 2048);
}

TEST(LossScaler, RestoresSavedStateAndRejectsBadOptions) {
  LossScaler s({.initial_scale = 8, .growth_interval = 4});
  s.restore(64, 3);
  EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 128);  // the fourth good step in a row, counting the three restored
  EXPECT_THROW(s.restore(0, 0), Error);
  EXPECT_THROW(LossScaler({.initial_scale = -1}), Error);
  EXPECT_THROW(LossScaler({.backoff_factor = 1}), Error);
  EXPECT_THROW(LossScaler({.growth_interval = 0}), Error);
}

}  // namespace
}  // namespace tfm::train
