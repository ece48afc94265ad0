// Scaled dot-product attention over heads, on [batch, time, heads * head_dim] buffers (the layout
// the Q/K/V projections produce, so no transposes are needed):
//   S = scale * Q_h K_g^T + B_h,  S[i, j] = -1e9 where masked (as the seed's masked_fill(mask == 0, -1e9)),
//   P = softmax_rows(S),  P' = dropout(P),  O_h = P' V_g.
// Grouped-query attention: K and V may carry fewer heads (kv_heads, dividing heads); query head h reads
// K/V head g = h / (heads / kv_heads), as HF's repeat_kv (Llama, Mistral, Mixtral).
// Query i sits at position i + query_offset of the key sequence (0 for training, the cached length when
// decoding). Key j is masked when key_valid[b, j] == 0, or if causal when j > i + query_offset, or with
// a sliding window w > 0 when (i + query_offset) - j >= w (HF masking_utils sliding_window_overlay keeps
// kv_idx > q_idx - w: each query sees itself and the w - 1 keys before it).
// Global tokens g > 0 (Longformer's local + global attention, Beltagy et al. 2020, section 3.1; BigBird's
// ITC layout without random blocks): the keys at positions [0, g) stay visible to every query despite the
// window, and the queries at positions [0, g) see every key (both within causality). With a window w this
// is block-sparse: each query sees O(w + g) keys, and the flash kernel skips the key tiles none of a
// query tile's rows sees, so cost grows as n (w + g).
// Masked scores: `additive` false (the seed's masked_fill(mask == 0, -1e9)) makes them constants with no
// gradient. true reproduces Hugging Face's eager attention, which adds finfo.min to them instead: the same
// forward (a row with a visible key gives masked keys probability exactly 0; a row with none is uniform
// over all keys, the huge constant having absorbed every score), but in a row with no visible key
// autograd still passes the softmax gradient P * (dP - sum(P dP)) at that uniform P to every raw score.
// Left padding under a causal mask makes such rows (the padding queries), and a padding position's
// logits do enter HF's shifted loss (it predicts the first real token).
// The additive bias B (before masking) is the sum of a given score bias (T5's relative positions) and
// ALiBi's slope_h * key_position[b, j] (BLOOM).
#pragma once

#include <cstdint>

namespace tfm::kernels {

struct AttentionDims {
  int64_t batch = 0, q_len = 0, k_len = 0, heads = 0, head_dim = 0;
  int64_t kv_heads = 0;  // heads in k and v; 0 means heads
  int64_t q_stride = 0;  // elements between consecutive time steps in q and out (and dq)
  int64_t k_stride = 0;  // ... in k (and dk)
  int64_t v_stride = 0;  // ... in v (and dv)
  // elements between consecutive batch rows; 0 means time * stride (dense)
  int64_t q_batch_stride = 0, k_batch_stride = 0, v_batch_stride = 0;
};

struct AttentionMask {
  const uint8_t* key_valid = nullptr;  // [batch, k_len], nullptr: all valid
  bool causal = false;
  int64_t query_offset = 0;
  int64_t window = 0;     // 0: no sliding window
  int64_t global = 0;     // block-sparse: keys and queries at positions [0, global) are global (see above)
  bool additive = false;  // HF's additive mask (see above) instead of masked_fill
};

struct AttentionBias {
  const float* scores = nullptr;  // [heads, q_len, k_len], or [batch, heads, q_len, k_len] if per_batch
  bool per_batch = false;
  const float* alibi_slopes = nullptr;   // [heads]; with key_positions
  const float* key_positions = nullptr;  // [batch, k_len]
};

struct DropoutSpec {
  float p = 0.0f;
  uint64_t seed = 0;
  uint64_t offset = 0;  // stream position of element [0, 0, 0, 0]
};

// probs (optional, [batch, heads, q_len, k_len]) receives P (before dropout), for backward or display.
void attention_forward(const AttentionDims& d, const AttentionMask& mask, const AttentionBias& bias,
                       float scale, const DropoutSpec& drop, const float* q, const float* k, const float* v,
                       float* out, float* probs);

// Accumulates into dq, dk, dv (each may be null). Needs the P saved by the forward pass. dscores (optional,
// [batch, heads, q_len, k_len]) receives (is overwritten with) d loss / d S, the gradient of the bias.
// Masked scores get no gradient, except with mask.additive in a row where every key is masked (see
// above).
void attention_backward(const AttentionDims& d, const AttentionMask& mask, float scale,
                        const DropoutSpec& drop, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv,
                        float* dscores);

}  // namespace tfm::kernels
