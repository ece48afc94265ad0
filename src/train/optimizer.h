// Adam and AdamW with bias correction, exactly as torch.optim defines them (PyTorch 1.13):
//   g <- grad (+ weight_decay * p for Adam: L2 added to the gradient)
//   p <- p * (1 - lr * weight_decay)           (AdamW: decoupled decay)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <map>
#include <string>

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
  Adam(ParameterList params, AdamOptions options);

  void zero_grad();
  // One update of every trainable parameter at learning rate `lr`.
  void step(float lr);
  int64_t steps() const { return t_; }
  const AdamOptions& options() const { return options_; }

  // Optimizer state for checkpoints: "<param>.exp_avg" / "<param>.exp_avg_sq" tensors and the step count.
  std::map<std::string, Tensor> state() const;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps);  // throws naming a missing tensor

 private:
  ParameterList params_;
  AdamOptions options_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

// Scales every gradient so that the global L2 norm is at most max_norm (torch.nn.utils.clip_grad_norm_:
// factor = max_norm / (norm + 1e-6), applied only when < 1). Returns the norm before clipping.
float clip_grad_norm(const ParameterList& params, float max_norm);

}  // namespace tfm::train
