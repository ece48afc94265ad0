// Differentiable operations. Each computes its output with a kernel (kernels/) and records one
// node with a hand-written backward on the inputs' tape (see tape.h). All float32, contiguous
// inputs (an op throws if it gets a non-contiguous one).
#pragma once

#include <span>
#include <vector>

#include "autograd/tape.h"
#include "core/random.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/norm.h"

namespace tfm::ag {

// y = x W^T + b, as torch.nn.Linear: x [..., in], W [out, in], b [out] or undefined.
Var linear(Var x, Var w, Var b = {});
// [M, K] @ [K, N]
Var matmul(Var a, Var b);
Var add(Var a, Var b);  // same shapes
Var mul(Var a, Var b);  // elementwise, same shapes
// The same elements under another shape (a view; numel must match, one dimension may be -1).
Var reshape(Var x, const Shape& shape);
Var scale(Var x, float s);
// x [batch, time, dim] + table[0:time, :] (a constant, e.g. sinusoidal positions).
Var add_positions(Var x, const Tensor& table);
Var relu(Var x);
Var gelu(Var x, kernels::GeluKind kind);  // see kernels/cpu/activation.h for both forms
Var silu(Var x);
// silu(gate) * up, the gated unit of Llama's MLP: down(swiglu(gate(x), up(x))).
Var swiglu(Var gate, Var up);
// Inverted dropout with probability p, drawing from rng (no-op when p == 0 or !training).
Var dropout(Var x, float p, Rng* rng, bool training);
// Normalises the last dimension (see kernels/cpu/norm.h for both kinds).
Var layer_norm(Var x, Var gamma, Var beta, float eps, kernels::NormKind kind);
// RMSNorm over the last dimension: gamma * x / sqrt(mean(x^2) + eps) (Llama, Mistral, Mixtral; T5's
// LayerNorm). See kernels/cpu/rms_norm.h.
Var rms_norm(Var x, Var gamma, float eps);
// y[..., :] = scale * table[ids[...], :]; ids int64 of any shape. Row padding_idx (when >= 0) gets no
// gradient, as torch.nn.Embedding(padding_idx=...).
Var embedding(Var table, const Tensor& ids, float scale, int64_t padding_idx = -1);
Var sum(Var x);  // all elements, a one-element result

// ---- Positions
// Rotary embedding (HF rotate-half convention, kernels/cpu/rope.h) of x [batch, time, heads * head_dim];
// positions int64 [batch, time] (per row, e.g. HF generate's cumsum(mask) - 1 under left padding) or
// [time] (shared by every row). theta: config rope_theta. Apply to queries and keys before attention.
Var rope(Var x, const Tensor& positions, int heads, float theta);
// The same with positions offset, offset + 1, ... in every row (offset: tokens already in a KV cache).
Var rope(Var x, int64_t offset, int heads, float theta);

// T5 relative position bias [heads, q_len, k_len]: bias[h, i, j] = table[bucket(j - (i + query_offset)), h],
// table [num_buckets, heads] (HF relative_attention_bias.weight), buckets as kernels/cpu/position_bias.h.
// Bidirectional for the encoder, unidirectional for the decoder's self-attention. The gradient flows
// into the table; pass the result as attention()'s bias (reusing one result in every layer, as T5 does,
// accumulates every layer's gradient).
Var relative_position_bias(Var table, int64_t q_len, int64_t k_len, bool bidirectional, int64_t max_distance,
                           int64_t query_offset = 0);
// ALiBi head slopes (F32 [heads]) as BLOOM's build_alibi_tensor makes them.
Tensor alibi_slopes(int heads);
// BLOOM's ALiBi key positions (F32 [batch, k_len]) from its attention mask (U8 or I64 [batch, k_len], 1 =
// real token): (cumsum(mask) - 1) * mask, so left padding does not shift the real tokens' positions.
Tensor alibi_key_positions(const Tensor& attention_mask);

// ---- Attention
// Which kernel attention() uses, for the whole process: Flash (the default: tiled, online softmax, memory
// linear in length) or Dense (the [q_len, k_len] probabilities materialised; for benchmarks and tests).
enum class AttentionKernel { Flash, Dense };
void set_attention_kernel(AttentionKernel kernel);
AttentionKernel attention_kernel();

struct AttentionOptions {
  int heads = 1;
  int kv_heads = 0;    // heads in k and v (grouped-query attention); 0: same as heads
  float scale = 1.0f;  // on q.k (1/sqrt(head_dim) usually; 1 for T5)
  Tensor key_valid;    // U8 [batch, k_len]; undefined: every key valid
  bool causal = false;
  int64_t query_offset = 0;  // query i is at key position i + query_offset (cached keys before it)
  int64_t window = 0;  // sliding window (Mistral): key j visible only if (i + query_offset) - j < window
  int64_t global_tokens =
      0;  // block-sparse: positions [0, global_tokens) are global (kernels/cpu/attention.h)
  bool additive_mask =
      false;               // masked scores as HF's additive mask, not masked_fill (kernels/cpu/attention.h)
  Tensor alibi_slopes;     // F32 [heads] (see alibi_slopes()); adds slope_h * alibi_positions[b, j]
  Tensor alibi_positions;  // F32 [batch, k_len] (see alibi_key_positions())
  float dropout = 0.0f;    // on the attention probabilities, when training
  Rng* rng = nullptr;
  Tensor* keep_probs = nullptr;  // receives P [batch, heads, q_len, k_len] (for visualisation)
};
// Multi-head scaled dot-product attention: q [batch, q_len, heads*head_dim], k and v [batch, k_len,
// kv_heads*head_dim]. Returns [batch, q_len, heads*head_dim] (heads concatenated). bias (optional, with
// gradient) is added to the scaled scores: [heads, q_len, k_len] shared by the batch, or [batch, heads,
// q_len, k_len]. See kernels/cpu/attention.h. Computed by the fused flash kernel
// (kernels/cpu/flash_attention.h) unless keep_probs asks for P or set_attention_kernel chose Dense.
Var attention(Var q, Var k, Var v, const AttentionOptions& options, bool training, Var bias = {});
// Linear attention with the elu + 1 feature map (kernels/cpu/linear_attention.h), same shapes and heads as
// attention(). Of the options only heads, kv_heads, key_valid, causal and query_offset apply; a window,
// global tokens or ALiBi are errors, and there is no dropout (no probabilities exist).
Var linear_attention(Var q, Var k, Var v, const AttentionOptions& options);

// ---- LoRA
// A linear layer with a LoRA adapter, y = x W^T + bias + scale * dropout(x) A^T B^T for x [..., in],
// W [out, in], bias [out] (optional), A [r, in], B [out, r] (nn/lora.h), as one op: it keeps only
// dropout(x) A^T ([..., r]) for backward and regenerates the dropout mask there, so an adapter costs no copy
// of its input and no [..., out] tensor besides the output. Dropout p applies when training.
Var lora_linear(Var x, Var w, Var bias, Var a, Var b, float scale, float p, Rng* rng, bool training);

// ---- Mixture of experts (kernels/cpu/moe.h has the formulas)
struct Routing {
  Tensor experts;  // int64 [tokens, k]: the chosen experts, most probable first
  Var weights;     // [tokens, k]: their softmax probabilities renormalised over the k (differentiable)
};
// Mixtral's router: softmax over all experts of logits [tokens, experts], top k, renormalised.
Routing router_top_k(Var logits, int k);
// HF Mixtral's load_balancing_loss_func (without the coefficient): router_logits holds each layer's
// [tokens, experts] logits (as if concatenated); token_valid (U8 or I64 [tokens], undefined: all) masks
// padding. A scalar with gradient into every layer's logits. Throws if no token is valid.
Var load_balancing_loss(std::span<const Var> router_logits, int k, const Tensor& token_valid);

// Dispatch: the tokens an expert got and where their weights sit in the routing's [tokens, k] weights.
struct ExpertBatch {
  Tensor tokens;  // int64 [m]: token rows routed to this expert, increasing
  Tensor slots;   // int64 [m]: token * k + choice, an index into the flattened weights
};
std::vector<ExpertBatch> group_by_expert(const Tensor& experts, int64_t num_experts);
// Rows x[index[m], ...] of x [n, ...]: [m, ...]; the backward scatter-adds.
Var gather_rows(Var x, const Tensor& index);
// out [out_rows, cols] = zeros, then out[index[m], :] += weights[m] * rows[m, :]; rows [m, cols],
// weights (optional) with m elements. Gradient into rows and weights. An MoE layer is then
//   sum over experts e of scatter_add_rows(expert_e(gather_rows(x, tokens_e)), tokens_e, n,
//                                          gather_rows(reshape(weights, {n * k, 1}), slots_e)).
Var scatter_add_rows(Var rows, const Tensor& index, int64_t out_rows, Var weights = {});

// Mean cross-entropy of logits [..., classes] against int64 labels [...] (see kernels/cpu/loss.h).
Var cross_entropy(Var logits, const Tensor& labels, int64_t ignore_index, float smoothing);

}  // namespace tfm::ag
