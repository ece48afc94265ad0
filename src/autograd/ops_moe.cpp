// Mixture-of-experts ops: routing, the load-balancing loss, and row gather / weighted scatter-add.
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/moe.h"

namespace tfm::ag {

Routing router_top_k(Var logits, int top) {
  const Tensor& z = contiguous_input(logits, "router_top_k");
  TFM_CHECK(z.dim() == 2 && top > 0 && top <= z.size(1), "router_top_k: top {} of logits {}", top, z.str());
  int64_t rows = z.size(0), experts = z.size(1);
  Routing out;
  out.experts = Tensor::empty({rows, top}, DType::I64);
  Tensor w = Tensor::empty({rows, top});
  k::router_top_k_forward(z.f32(), rows, experts, top, out.experts.data<int64_t>(), w.f32());
  if (Node* n = logits.tape()->record(out.weights, w, "router_top_k",
                                      [](Tape& t, const Node& n) {
                                        float* dz = grad_ptr(t, n, 0);
                                        if (!dz) return;
                                        const Tensor& w = t.value(n.out);
                                        k::router_top_k_backward(n.saved[0].data<int64_t>(), w.f32(),
                                                                 out_grad(t, n), w.size(0),
                                                                 t.value(n.in[0]).size(1), w.size(1), dz);
                                      },
                                      {logits}))
    n->saved[0] = out.experts;
  return out;
}

namespace {

// The mask as U8 [tokens] (undefined stays undefined).
Tensor token_mask_u8(const Tensor& valid, int64_t tokens) {
  if (!valid.defined()) return Tensor();
  TFM_CHECK(valid.is_contiguous() && valid.numel() == tokens &&
                (valid.dtype() == DType::U8 || valid.dtype() == DType::I64),
            "load_balancing_loss: token mask {} for {} tokens (U8 or I64)", valid.str(), tokens);
  if (valid.dtype() == DType::U8) return valid;
  Tensor m = Tensor::empty({tokens}, DType::U8);
  for (int64_t i = 0; i < tokens; ++i) m.data<uint8_t>()[i] = valid.data<int64_t>()[i] != 0;
  return m;
}

const uint8_t* mask_ptr(const Tensor& m) { return m.defined() ? m.data<uint8_t>() : nullptr; }

// One layer's share of the loss, sum over valid tokens t and experts e of coef[e] * p_te.
// saved = {token mask, coef}.
Var layer_balance_term(Var logits, const Tensor& mask, const Tensor& coef) {
  const Tensor& z = logits.value();
  double value = k::weighted_router_probs(z.f32(), mask_ptr(mask), z.size(0), z.size(1), coef.f32());
  Var r;
  if (Node* n = logits.tape()->record(r, Tensor::full({1}, float(value)), "load_balancing",
                                      [](Tape& t, const Node& n) {
                                        float* dz = grad_ptr(t, n, 0);
                                        if (!dz) return;
                                        const Tensor& z = t.value(n.in[0]);
                                        k::weighted_router_probs_backward(
                                            z.f32(), mask_ptr(n.saved[0]), z.size(0), z.size(1),
                                            n.saved[1].f32(), out_grad(t, n)[0], dz);
                                      },
                                      {logits})) {
    n->saved[0] = mask;
    n->saved[1] = coef;
  }
  return r;
}

}  // namespace

// loss = E sum_e F_e P_e with F fixed by the top-k choices: linear in each layer's probabilities, so it is
// the sum of one node per layer, each weighting its probabilities by coef_e = E * F_e / (layers * valid).
Var load_balancing_loss(std::span<const Var> router_logits, int top, const Tensor& token_valid) {
  TFM_CHECK(!router_logits.empty(), "load_balancing_loss: no router logits");
  const Tensor& first = contiguous_input(router_logits[0], "load_balancing_loss");
  TFM_CHECK(first.dim() == 2 && top > 0 && top <= first.size(1), "load_balancing_loss: top {} of logits {}",
            top, first.str());
  int64_t tokens = first.size(0), experts = first.size(1);
  Tensor mask = token_mask_u8(token_valid, tokens);
  int64_t valid = tokens;
  if (mask.defined()) {
    valid = 0;
    for (int64_t i = 0; i < tokens; ++i) valid += mask.data<uint8_t>()[i];
  }
  if (valid == 0) fail("load_balancing_loss: every token is masked, the loss is undefined (0/0)");
  std::vector<double> counts(size_t(experts), 0.0);
  for (const Var& l : router_logits) {
    const Tensor& z = contiguous_input(l, "load_balancing_loss");
    TFM_CHECK(z.shape() == first.shape(), "load_balancing_loss: router logits {} and {} differ", z.str(),
              first.str());
    k::count_expert_choices(z.f32(), mask_ptr(mask), tokens, experts, top, counts.data());
  }
  double total = double(router_logits.size()) * double(valid);
  Tensor coef = Tensor::empty({experts});
  for (int64_t e = 0; e < experts; ++e) coef.f32()[e] = float(double(experts) * counts[e] / (total * total));
  Var loss = layer_balance_term(router_logits[0], mask, coef);
  for (size_t i = 1; i < router_logits.size(); ++i)
    loss = add(loss, layer_balance_term(router_logits[i], mask, coef));
  return loss;
}

std::vector<ExpertBatch> group_by_expert(const Tensor& experts, int64_t num_experts) {
  TFM_CHECK(experts.dim() == 2, "group_by_expert: experts {} is not [tokens, k]", experts.str());
  check_indices(experts, num_experts, "group_by_expert");
  int64_t tokens = experts.size(0), top = experts.size(1);
  const int64_t* sel = experts.data<int64_t>();
  std::vector<int64_t> sizes(size_t(num_experts), 0);
  for (int64_t i = 0; i < experts.numel(); ++i) ++sizes[size_t(sel[i])];
  std::vector<ExpertBatch> out(static_cast<size_t>(num_experts));
  for (int64_t e = 0; e < num_experts; ++e) {
    out[size_t(e)].tokens = Tensor::empty({sizes[size_t(e)]}, DType::I64);
    out[size_t(e)].slots = Tensor::empty({sizes[size_t(e)]}, DType::I64);
  }
  std::vector<int64_t> filled(size_t(num_experts), 0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t s = 0; s < top; ++s) {
      int64_t e = sel[t * top + s], at = filled[size_t(e)]++;
      out[size_t(e)].tokens.data<int64_t>()[at] = t;
      out[size_t(e)].slots.data<int64_t>()[at] = t * top + s;
    }
  return out;
}

// saved[0] = index.
Var gather_rows(Var x, const Tensor& index) {
  const Tensor& xv = contiguous_input(x, "gather_rows");
  TFM_CHECK(xv.dim() >= 1, "gather_rows of a scalar");
  check_indices(index, xv.size(0), "gather_rows");
  int64_t cols = xv.size(0) ? xv.numel() / xv.size(0) : 0;
  Shape shape = xv.shape();
  shape[0] = index.numel();
  Tensor y = Tensor::empty(shape);
  k::embedding_forward(xv.f32(), xv.size(0), cols, index.data<int64_t>(), index.numel(), 1.0f, y.f32());
  Var r;
  if (Node* n = x.tape()->record(r, y, "gather_rows",
                                 [](Tape& t, const Node& n) {
                                   float* dx = grad_ptr(t, n, 0);
                                   if (!dx) return;
                                   const Tensor& idx = n.saved[0];
                                   int64_t cols = idx.numel() ? t.value(n.out).numel() / idx.numel() : 0;
                                   k::embedding_backward(out_grad(t, n), idx.data<int64_t>(), idx.numel(),
                                                         cols, 1.0f, dx);
                                 },
                                 {x}))
    n->saved[0] = index;
  return r;
}

// saved[0] = index.
Var scatter_add_rows(Var rows, const Tensor& index, int64_t out_rows, Var weights) {
  const Tensor& rv = contiguous_input(rows, "scatter_add_rows");
  TFM_CHECK(rv.dim() >= 1 && rv.size(0) == index.numel(), "scatter_add_rows: rows {} for {} indices",
            rv.str(), index.numel());
  check_indices(index, out_rows, "scatter_add_rows");
  const float* w = nullptr;
  if (weights.defined()) {
    const Tensor& wv = contiguous_input(weights, "scatter_add_rows");
    TFM_CHECK(wv.numel() == rv.size(0), "scatter_add_rows: weights {} for {} rows", wv.str(), rv.size(0));
    w = wv.f32();
  }
  int64_t m = rv.size(0), cols = m ? rv.numel() / m : 0;
  Shape shape = rv.shape();
  shape[0] = out_rows;
  Tensor y = Tensor::zeros(shape);
  k::scatter_add_rows_forward(rv.f32(), index.data<int64_t>(), w, m, cols, y.f32());
  Var r;
  if (Node* n = rows.tape()->record(r, y, "scatter_add_rows",
                                    [](Tape& t, const Node& n) {
                                      const Tensor& rv = t.value(n.in[0]);
                                      int64_t m = rv.size(0), cols = m ? rv.numel() / m : 0;
                                      const float* w = n.in[1] >= 0 ? t.value(n.in[1]).f32() : nullptr;
                                      k::scatter_add_rows_backward(rv.f32(), n.saved[0].data<int64_t>(), w,
                                                                   out_grad(t, n), m, cols, grad_ptr(t, n, 0),
                                                                   grad_ptr(t, n, 1));
                                    },
                                    {rows, weights}))
    n->saved[0] = index;
  return r;
}

}  // namespace tfm::ag
