// Position encodings that act inside attention: rope, relative_position_bias, ALiBi helpers.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/cpu/position_bias.h"
#include "kernels/cpu/rope.h"

namespace tfm::ag {

namespace {

// Node constants: f[0] = theta, i[0] = heads; saved[0] = one position per row (int64 [batch * time]).
Var rope_rows(Var x, const Tensor& row_positions, int heads, float theta) {
  const Tensor& xv = contiguous_input(x, "rope");
  int64_t rows = xv.numel() / xv.size(-1), head_dim = xv.size(-1) / heads;
  Tensor y = Tensor::empty(xv.shape());
  k::rope_apply(xv.f32(), y.f32(), row_positions.data<int64_t>(), rows, heads, head_dim, theta, false);
  Var r;
  if (Node* n = x.tape()->record(r, y, "rope",
                                 [](Tape& t, const Node& n) {
                                   float* dx = grad_ptr(t, n, 0);
                                   if (!dx) return;
                                   const Tensor& xv = t.value(n.in[0]);
                                   int64_t heads = n.i[0], rows = xv.numel() / xv.size(-1);
                                   k::rope_apply(out_grad(t, n), dx, n.saved[0].data<int64_t>(), rows, heads,
                                                 xv.size(-1) / heads, n.f[0], true);
                                 },
                                 {x})) {
    n->saved[0] = row_positions;
    n->f[0] = theta;
    n->i[0] = heads;
  }
  return r;
}

void check_rope_input(const Var& x, int heads) {
  const Tensor& xv = contiguous_input(x, "rope");
  TFM_CHECK(xv.dim() == 3 && heads > 0 && xv.size(2) % heads == 0 && (xv.size(2) / heads) % 2 == 0,
            "rope needs [batch, time, heads * head_dim] with an even head_dim, got {} for {} heads", xv.str(),
            heads);
}

}  // namespace

Var rope(Var x, const Tensor& positions, int heads, float theta) {
  check_rope_input(x, heads);
  int64_t batch = x.value().size(0), time = x.value().size(1);
  TFM_CHECK(positions.dtype() == DType::I64 && positions.is_contiguous() &&
                (positions.shape() == Shape{batch, time} || positions.shape() == Shape{time}),
            "rope: positions {} for input {}", positions.str(), x.value().str());
  if (positions.dim() == 2) return rope_rows(x, positions, heads, theta);
  Tensor rows = Tensor::empty({batch * time}, DType::I64);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < time; ++t) rows.data<int64_t>()[b * time + t] = positions.data<int64_t>()[t];
  return rope_rows(x, rows, heads, theta);
}

Var rope(Var x, int64_t offset, int heads, float theta) {
  check_rope_input(x, heads);
  int64_t batch = x.value().size(0), time = x.value().size(1);
  Tensor rows = Tensor::empty({batch * time}, DType::I64);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < time; ++t) rows.data<int64_t>()[b * time + t] = offset + t;
  return rope_rows(x, rows, heads, theta);
}

// Node constants: saved[0] = buckets int64 [q_len * k_len].
Var relative_position_bias(Var table, int64_t q_len, int64_t k_len, bool bidirectional, int64_t max_distance,
                           int64_t query_offset) {
  const Tensor& tv = contiguous_input(table, "relative_position_bias");
  TFM_CHECK(tv.dim() == 2 && q_len >= 0 && k_len >= 0 && max_distance > 0,
            "relative_position_bias: table {} for {} queries, {} keys, max distance {}", tv.str(), q_len,
            k_len, max_distance);
  int64_t num_buckets = tv.size(0), heads = tv.size(1);
  Tensor buckets = Tensor::empty({q_len * k_len}, DType::I64);
  k::relative_position_buckets(q_len, k_len, query_offset, bidirectional, num_buckets, max_distance,
                               buckets.data<int64_t>());
  Tensor y = Tensor::empty({heads, q_len, k_len});
  k::relative_bias_forward(tv.f32(), heads, buckets.data<int64_t>(), q_len * k_len, y.f32());
  Var r;
  if (Node* n = table.tape()->record(r, y, "relative_position_bias",
                                     [](Tape& t, const Node& n) {
                                       if (float* dt = grad_ptr(t, n, 0))
                                         k::relative_bias_backward(out_grad(t, n), t.value(n.in[0]).size(1),
                                                                   n.saved[0].data<int64_t>(),
                                                                   n.saved[0].numel(), dt);
                                     },
                                     {table}))
    n->saved[0] = buckets;
  return r;
}

Tensor alibi_slopes(int heads) {
  TFM_CHECK(heads > 0, "alibi_slopes: {} heads", heads);
  std::vector<float> s = k::alibi_slopes(heads);
  Tensor t = Tensor::empty({heads});
  std::copy(s.begin(), s.end(), t.f32());
  return t;
}

Tensor alibi_key_positions(const Tensor& attention_mask) {
  TFM_CHECK(attention_mask.dim() == 2 && attention_mask.is_contiguous() &&
                (attention_mask.dtype() == DType::U8 || attention_mask.dtype() == DType::I64),
            "alibi_key_positions needs a contiguous U8 or I64 [batch, k_len] mask, got {}",
            attention_mask.str());
  int64_t batch = attention_mask.size(0), len = attention_mask.size(1);
  Tensor pos = Tensor::empty({batch, len});
  for (int64_t b = 0; b < batch; ++b) {
    int64_t seen = 0;
    for (int64_t j = 0; j < len; ++j) {
      bool real = attention_mask.dtype() == DType::U8 ? attention_mask.data<uint8_t>()[b * len + j] != 0
                                                      : attention_mask.data<int64_t>()[b * len + j] != 0;
      seen += real;
      pos.f32()[b * len + j] = real ? float(seen - 1) : 0.0f;
    }
  }
  return pos;
}

}  // namespace tfm::ag
