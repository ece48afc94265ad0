// Adam and AdamW with bias correction, exactly as torch.optim defines them (PyTorch 1.13):
//   g <- grad (+ weight_decay * p for Adam: L2 added to the gradient)
//   p <- p * (1 - lr * weight_decay)           (AdamW: decoupled decay)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/parameter.h"

namespace tfm::train {

struct AdamOptions {
  float lr = 1e-3f;  // the base rate; a schedule passes the current one to step()
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled = false;  // false: Adam (L2 into the gradient), true: AdamW
};

class Adam {
 public:
  // Allocates zeroed state for the parameters that are trainable now (make a new optimizer after
  // unfreezing one). Throws tfm::Error for betas outside [0, 1), negative eps or weight_decay, a
  // parameter listed twice, or one whose value and grad are not contiguous float32 of the same shape.
  Adam(ParameterList params, AdamOptions options);

  void zero_grad();  // every parameter's grad, frozen ones included
  // One update of every trainable parameter at learning rate `lr`; frozen ones are skipped.
  void step(float lr);
  int64_t steps() const { return t_; }
  const AdamOptions& options() const { return options_; }

  // Optimizer state for checkpoints: "<param>.exp_avg" / "<param>.exp_avg_sq" tensors and the step count.
  // Frozen parameters have no state. The tensors alias the live state (no copy): write them out before
  // the next step().
  std::map<std::string, Tensor> state() const;
  // Copies `state` in after checking it completely (names, shapes): throws naming a missing, unexpected or
  // misshapen tensor and then leaves the optimizer unchanged.
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps);

 private:
  ParameterList params_;
  AdamOptions options_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

// Sum of the squares of the gradients of the trainable parameters, accumulated in double. The summation
// order is fixed, so the result does not depend on the number of threads.
double grad_squares(const ParameterList& params);
// Its square root: the global L2 norm.
double grad_norm(const ParameterList& params);

// Scales every gradient so that the global L2 norm is at most max_norm (torch.nn.utils.clip_grad_norm_:
// factor = max_norm / (norm + 1e-6), applied only when < 1). Returns the norm before clipping. A
// non-finite norm is returned as is and the gradients are left alone: the caller decides (e.g. skips
// the step). Frozen parameters (trainable == false) neither count nor get scaled. max_norm must be > 0
// (infinity: no clipping). `unscale` (loss scaling's 1 / S) multiplies the gradients first, in the same
// pass: the norm is that of the unscaled gradients.
float clip_grad_norm(const ParameterList& params, float max_norm, float unscale = 1.0f);
// clip_grad_norm's scaling, given `norm`, the global norm of the unscaled gradients (data parallelism
// sums the squares over ranks, each holding some of the parameters).
void clip_to_norm(const ParameterList& params, double norm, float max_norm, float unscale);

}  // namespace tfm::train
