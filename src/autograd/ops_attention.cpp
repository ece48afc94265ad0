// attention(): the fused multi-head attention op over kernels/cpu/attention.h.
#include <atomic>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/linear_attention.h"

namespace tfm::ag {

namespace {

k::AttentionDims attention_dims(const Tensor& q, const Tensor& kk, int heads) {
  k::AttentionDims d;
  d.batch = q.size(0);
  d.q_len = q.size(1);
  d.k_len = kk.size(1);
  d.heads = heads;
  d.head_dim = q.size(2) / heads;
  d.kv_heads = kk.size(2) / d.head_dim;
  d.q_stride = q.size(2);
  d.k_stride = d.v_stride = kk.size(2);
  return d;
}

void check_shapes(const Tensor& q, const Tensor& kk, const Tensor& v, const AttentionOptions& o) {
  int kv_heads = o.kv_heads ? o.kv_heads : o.heads;
  bool ok = q.dim() == 3 && kk.dim() == 3 && o.heads > 0 && kv_heads > 0 && q.size(2) % o.heads == 0 &&
            o.heads % kv_heads == 0 && kk.shape() == v.shape() && kk.size(0) == q.size(0) &&
            kk.size(2) == q.size(2) / o.heads * kv_heads;
  TFM_CHECK(ok, "attention: q {} k {} v {} heads {} kv_heads {}", q.shape().str(), kk.shape().str(),
            v.shape().str(), o.heads, kv_heads);
}

// A kernel mask with the options' key padding mask (checked against the dims) and nothing else yet.
k::AttentionMask key_mask(const k::AttentionDims& d, const AttentionOptions& o) {
  k::AttentionMask mask;
  if (o.key_valid.defined()) {
    TFM_CHECK(o.key_valid.dtype() == DType::U8 && o.key_valid.numel() == d.batch * d.k_len,
              "attention key mask {} for batch {} keys {}", o.key_valid.str(), d.batch, d.k_len);
    mask.key_valid = o.key_valid.data<uint8_t>();
  }
  return mask;
}

// The kernel's view of the score bias (undefined: none; 4 dimensions: one per batch row) and of ALiBi's
// slopes and key positions (both or neither), as checked by attention_bias().
k::AttentionBias bias_view(const Tensor& scores, const Tensor& slopes, const Tensor& positions) {
  k::AttentionBias b;
  if (scores.defined()) {
    b.scores = scores.f32();
    b.per_batch = scores.dim() == 4;
  }
  if (slopes.defined()) {
    b.alibi_slopes = slopes.f32();
    b.key_positions = positions.f32();
  }
  return b;
}

k::AttentionBias attention_bias(const k::AttentionDims& d, const AttentionOptions& o, const Var& bias) {
  Tensor scores;
  if (bias.defined()) {
    scores = contiguous_input(bias, "attention bias");
    Shape shared{d.heads, d.q_len, d.k_len}, per_batch{d.batch, d.heads, d.q_len, d.k_len};
    TFM_CHECK(scores.shape() == shared || scores.shape() == per_batch, "attention bias {} for {} or {}",
              scores.str(), shared.str(), per_batch.str());
  }
  TFM_CHECK(o.alibi_slopes.defined() == o.alibi_positions.defined(),
            "attention: ALiBi needs both slopes and key positions");
  if (o.alibi_slopes.defined())
    TFM_CHECK(o.alibi_slopes.dtype() == DType::F32 && o.alibi_slopes.is_contiguous() &&
                  o.alibi_slopes.numel() == d.heads && o.alibi_positions.dtype() == DType::F32 &&
                  o.alibi_positions.is_contiguous() && o.alibi_positions.numel() == d.batch * d.k_len,
              "attention: ALiBi slopes {} and positions {} for {} heads, batch {}, {} keys",
              o.alibi_slopes.str(), o.alibi_positions.str(), d.heads, d.batch, d.k_len);
  return bias_view(scores, o.alibi_slopes, o.alibi_positions);
}

// Node constants: f = {scale, dropout p}; i = {heads, mask flags (kCausal | kAdditive), dropout seed,
// dropout offset, query_offset, window, global tokens}; saved = {P (dense) or the rows' log-sum-exp (flash),
// key_valid, ALiBi slopes, ALiBi key positions}.
constexpr int64_t kCausal = 1, kAdditive = 2;

std::atomic<AttentionKernel> g_kernel{AttentionKernel::Flash};

k::AttentionMask node_mask(const Node& n) {
  k::AttentionMask mask;
  mask.key_valid = n.saved[1].defined() ? n.saved[1].data<uint8_t>() : nullptr;
  mask.causal = (n.i[1] & kCausal) != 0;
  mask.additive = (n.i[1] & kAdditive) != 0;
  mask.query_offset = n.i[4];
  mask.window = n.i[5];
  mask.global = n.i[6];
  return mask;
}

// A bias shared by the batch collects every row's gradient.
void accumulate_bias_grad(Tape& t, const Node& n, float* dbias, const Tensor& dscores) {
  int64_t block = t.value(n.in[3]).numel();
  for (int64_t b = 0; b < dscores.numel() / block; ++b)
    k::accumulate(dbias, dscores.f32() + b * block, block);
}

template <bool kFlash>
void attention_backward(Tape& t, const Node& n) {
  const Tensor& qv = t.value(n.in[0]);
  const Tensor& kt = t.value(n.in[1]);
  const Tensor& vt = t.value(n.in[2]);
  k::AttentionDims d = attention_dims(qv, kt, int(n.i[0]));
  k::AttentionMask mask = node_mask(n);
  k::DropoutSpec drop{n.f[1], uint64_t(n.i[2]), uint64_t(n.i[3])};
  float* dbias = grad_ptr(t, n, 3);
  Tensor dscores = dbias ? Tensor::empty({d.batch, d.heads, d.q_len, d.k_len}) : Tensor();
  if constexpr (kFlash) {
    const k::AttentionBias b = bias_view(n.in[3] >= 0 ? t.value(n.in[3]) : Tensor(), n.saved[2], n.saved[3]);
    k::flash_attention_backward(d, mask, b, n.f[0], drop, qv.f32(), kt.f32(), vt.f32(), t.value(n.out).f32(),
                                n.saved[0].f32(), out_grad(t, n), grad_ptr(t, n, 0), grad_ptr(t, n, 1),
                                grad_ptr(t, n, 2), dbias ? dscores.f32() : nullptr);
  } else {
    k::attention_backward(d, mask, n.f[0], drop, qv.f32(), kt.f32(), vt.f32(), n.saved[0].f32(),
                          out_grad(t, n), grad_ptr(t, n, 0), grad_ptr(t, n, 1), grad_ptr(t, n, 2),
                          dbias ? dscores.f32() : nullptr);
  }
  if (dbias) accumulate_bias_grad(t, n, dbias, dscores);
}

}  // namespace

Var attention(Var q, Var kv, Var v, const AttentionOptions& o, bool training, Var bias) {
  const Tensor& qv = contiguous_input(q, "attention");
  const Tensor& kt = contiguous_input(kv, "attention");
  const Tensor& vt = contiguous_input(v, "attention");
  check_shapes(qv, kt, vt, o);
  k::AttentionDims d = attention_dims(qv, kt, o.heads);
  k::AttentionMask mask = key_mask(d, o);
  TFM_CHECK(o.window >= 0 && o.global_tokens >= 0, "attention: negative window {} or global tokens {}",
            o.window, o.global_tokens);
  mask.causal = o.causal;
  mask.additive = o.additive_mask;
  mask.query_offset = o.query_offset;
  mask.window = o.window;
  mask.global = o.global_tokens;
  k::AttentionBias b = attention_bias(d, o, bias);
  k::DropoutSpec drop;
  if (training && o.dropout > 0) {
    TFM_CHECK(o.rng, "attention dropout needs an rng");
    drop.p = o.dropout;
    drop.seed = o.rng->seed();
    drop.offset = o.rng->take(uint64_t(d.batch * d.heads * d.q_len * d.k_len));
  }
  Tape& tape = *q.tape();
  const bool flash = !o.keep_probs && g_kernel.load() == AttentionKernel::Flash;
  Tensor y = Tensor::empty(qv.shape());
  Tensor saved;  // what backward needs: P (dense) or each row's log-sum-exp (flash)
  if (flash) {
    if (tape.grad_enabled()) saved = Tensor::empty({d.batch, d.heads, d.q_len});
    k::flash_attention_forward(d, mask, b, o.scale, drop, qv.f32(), kt.f32(), vt.f32(), y.f32(),
                               saved.defined() ? saved.f32() : nullptr);
  } else {
    if (tape.grad_enabled() || o.keep_probs) saved = Tensor::empty({d.batch, d.heads, d.q_len, d.k_len});
    k::attention_forward(d, mask, b, o.scale, drop, qv.f32(), kt.f32(), vt.f32(), y.f32(),
                         saved.defined() ? saved.f32() : nullptr);
    if (o.keep_probs) *o.keep_probs = saved;
  }
  Var r;
  if (Node* n = tape.record(r, y, "attention", flash ? attention_backward<true> : attention_backward<false>,
                            {q, kv, v, bias})) {
    n->saved[0] = saved;
    n->saved[1] = o.key_valid;
    n->saved[2] = o.alibi_slopes;
    n->saved[3] = o.alibi_positions;
    n->f[0] = o.scale;
    n->f[1] = drop.p;
    n->i[0] = o.heads;
    n->i[1] = (o.causal ? kCausal : 0) | (o.additive_mask ? kAdditive : 0);
    n->i[2] = int64_t(drop.seed);
    n->i[3] = int64_t(drop.offset);
    n->i[4] = o.query_offset;
    n->i[5] = o.window;
    n->i[6] = o.global_tokens;
  }
  return r;
}

namespace {

// Node constants: i = {heads, causal, query_offset}; saved = {key_valid}.
void linear_attention_backward(Tape& t, const Node& n) {
  const Tensor& qv = t.value(n.in[0]);
  const Tensor& kt = t.value(n.in[1]);
  k::AttentionMask mask;
  mask.key_valid = n.saved[0].defined() ? n.saved[0].data<uint8_t>() : nullptr;
  mask.causal = n.i[1] != 0;
  mask.query_offset = n.i[2];
  k::linear_attention_backward(attention_dims(qv, kt, int(n.i[0])), mask, qv.f32(), kt.f32(),
                               t.value(n.in[2]).f32(), out_grad(t, n), grad_ptr(t, n, 0), grad_ptr(t, n, 1),
                               grad_ptr(t, n, 2));
}

}  // namespace

Var linear_attention(Var q, Var kv, Var v, const AttentionOptions& o) {
  const Tensor& qv = contiguous_input(q, "linear attention");
  const Tensor& kt = contiguous_input(kv, "linear attention");
  const Tensor& vt = contiguous_input(v, "linear attention");
  check_shapes(qv, kt, vt, o);
  TFM_CHECK(o.window == 0 && o.global_tokens == 0 && !o.alibi_slopes.defined() && !o.keep_probs,
            "linear attention: no sliding window, global tokens, ALiBi or probabilities to keep");
  k::AttentionDims d = attention_dims(qv, kt, o.heads);
  k::AttentionMask mask = key_mask(d, o);
  mask.causal = o.causal;
  mask.query_offset = o.query_offset;
  Tensor y = Tensor::empty(qv.shape());
  k::linear_attention_forward(d, mask, qv.f32(), kt.f32(), vt.f32(), y.f32());
  Var r;
  if (Node* n = q.tape()->record(r, y, "linear_attention", linear_attention_backward, {q, kv, v})) {
    n->saved[0] = o.key_valid;
    n->i[0] = o.heads;
    n->i[1] = o.causal;
    n->i[2] = o.query_offset;
  }
  return r;
}

void set_attention_kernel(AttentionKernel kernel) { g_kernel.store(kernel); }
AttentionKernel attention_kernel() { return g_kernel.load(); }

}  // namespace tfm::ag
