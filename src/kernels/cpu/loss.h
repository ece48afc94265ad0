// Cross-entropy fused with log-softmax, with label smoothing and an ignore index, as
// torch.nn.functional.cross_entropy(reduction="mean") defines them:
//   lse = log sum_c exp(z_c);  loss_r = (1 - eps) (lse - z_y) + eps (lse - mean_c z_c)
//   loss = sum over rows with y != ignore_index of loss_r / (number of such rows)
//   d loss / d z_c = (softmax_c - (1 - eps) [c == y] - eps / C) / count
#pragma once

#include <cstdint>

namespace tfm::kernels {

// Returns the mean loss and the number of counted rows; lse[r] receives each row's log-sum-exp.
// Throws tfm::Error when a label is neither ignore_index nor in [0, classes).
double cross_entropy_forward(const float* logits, const int64_t* labels, int64_t rows, int64_t classes,
                             int64_t ignore_index, float smoothing, float* lse, int64_t* count);

// dlogits += upstream * d loss / d logits.
void cross_entropy_backward(const float* logits, const int64_t* labels, const float* lse, int64_t rows,
                            int64_t classes, int64_t ignore_index, float smoothing, int64_t count,
                            float upstream, float* dlogits);

}  // namespace tfm::kernels
