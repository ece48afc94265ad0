// Differentiable operations. Each computes its output with a kernel (kernels/) and records one
// node with a hand-written backward on the inputs' tape (see tape.h). All float32, contiguous
// inputs (an op throws if it gets a non-contiguous one).
#pragma once

#include "autograd/tape.h"
#include "core/random.h"
#include "kernels/cpu/norm.h"

namespace tfm::ag {

// y = x W^T + b, as torch.nn.Linear: x [..., in], W [out, in], b [out] or undefined.
Var linear(Var x, Var w, Var b = {});
// [M, K] @ [K, N]
Var matmul(Var a, Var b);
Var add(Var a, Var b);  // same shapes
Var scale(Var x, float s);
// x [batch, time, dim] + table[0:time, :] (a constant, e.g. sinusoidal positions).
Var add_positions(Var x, const Tensor& table);
Var relu(Var x);
// Inverted dropout with probability p, drawing from rng (no-op when p == 0 or !training).
Var dropout(Var x, float p, Rng* rng, bool training);
// Normalises the last dimension (see kernels/cpu/norm.h for both kinds).
Var layer_norm(Var x, Var gamma, Var beta, float eps, kernels::NormKind kind);
// y[..., :] = scale * table[ids[...], :]; ids int64 of any shape. Row padding_idx (when >= 0) gets no
// gradient, as torch.nn.Embedding(padding_idx=...).
Var embedding(Var table, const Tensor& ids, float scale, int64_t padding_idx = -1);
Var sum(Var x);  // all elements, a one-element result

struct AttentionOptions {
  int heads = 1;
  float scale = 1.0f;
  Tensor key_valid;  // U8 [batch, k_len]; undefined: every key valid
  bool causal = false;
  float dropout = 0.0f;  // on the attention probabilities, when training
  Rng* rng = nullptr;
  Tensor* keep_probs = nullptr;  // receives P [batch, heads, q_len, k_len] (for visualisation)
};
// Multi-head scaled dot-product attention: q [batch, q_len, heads*head_dim], k and v [batch, k_len, same].
// Returns [batch, q_len, heads*head_dim] (heads concatenated). See kernels/cpu/attention.h.
Var attention(Var q, Var k, Var v, const AttentionOptions& options, bool training);

// Mean cross-entropy of logits [..., classes] against int64 labels [...] (see kernels/cpu/loss.h).
Var cross_entropy(Var logits, const Tensor& labels, int64_t ignore_index, float smoothing);

}  // namespace tfm::ag
