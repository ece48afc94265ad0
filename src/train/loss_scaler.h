// Dynamic loss scaling for half-precision training (Micikevicius et al. 2018, "Mixed Precision
// Training"; the rule of torch.cuda.amp.GradScaler). Gradients smaller than binary16's smallest
// subnormal (2^-24) vanish when a product rounds them; the loss is multiplied by a scale S before
// backward so they stay representable, and the gradients are divided by S before the update. Too large
// an S overflows (infinity or NaN in some gradient): that step is skipped and S halved. After
// `growth_interval` steps in a row without overflow S doubles again, so S stays near the largest safe
// value.
#pragma once

#include <cstdint>

namespace tfm::train {

struct LossScalerOptions {
  double initial_scale = 65536;  // 2^16, GradScaler's default
  double growth_factor = 2;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& options = {});

  double scale() const { return scale_; }
  // Finite steps since the last overflow or growth (saved in checkpoints with the scale).
  int64_t good_steps() const { return good_steps_; }
  void restore(double scale, int64_t good_steps);

  // Records one step's outcome: whether every gradient was finite. Returns whether the step may update
  // the weights (false: skip it; the scale has been reduced).
  bool update(bool gradients_finite);

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace tfm::train
