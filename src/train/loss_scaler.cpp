#include "train/loss_scaler.h"

#include "core/error.h"

namespace tfm::train {

LossScaler::LossScaler(const LossScalerOptions& options) : options_(options), scale_(options.initial_scale) {
  TFM_CHECK(options.initial_scale > 0 && options.growth_factor >= 1 && options.backoff_factor > 0 &&
                options.backoff_factor < 1 && options.growth_interval > 0,
            "loss scaler: invalid options (scale {}, growth {}, backoff {}, interval {})",
            options.initial_scale, options.growth_factor, options.backoff_factor, options.growth_interval);
}

void LossScaler::restore(double scale, int64_t good_steps) {
  TFM_CHECK(scale > 0 && good_steps >= 0, "loss scaler: invalid saved state (scale {}, good steps {})", scale,
            good_steps);
  scale_ = scale;
  good_steps_ = good_steps;
}

bool LossScaler::update(bool gradients_finite) {
  if (!gradients_finite) {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
  return true;
}

}  // namespace tfm::train
