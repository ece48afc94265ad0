#include "autograd/tape.h"

#include "core/error.h"

namespace tfm::ag {

Tensor Var::value() const { return tape_->value(id_); }
bool Var::requires_grad() const { return tape_->requires_grad(id_); }
Tensor Var::grad() const { return tape_->grad(id_); }

Var Tape::leaf(const Tensor& value, bool requires_grad) {
  slots_.push_back(Slot{value, Tensor(), requires_grad});
  return Var(this, int32_t(slots_.size() - 1));
}

Var Tape::param(Parameter& p) {
  bool needs = p.trainable && grad_enabled_;
  slots_.push_back(Slot{p.value, needs ? p.grad : Tensor(), needs});
  return Var(this, int32_t(slots_.size() - 1));
}

Node* Tape::record(Var& out, const Tensor& value, const char* name, BackwardFn fn,
                   std::initializer_list<Var> inputs) {
  bool needs = false;
  if (grad_enabled_)
    for (const Var& v : inputs) needs = needs || (v.defined() && v.requires_grad());
  slots_.push_back(Slot{value, Tensor(), needs});
  out = Var(this, int32_t(slots_.size() - 1));
  if (!needs) return nullptr;
  Node& n = nodes_.emplace_back();
  n.backward = fn;
  n.name = name;
  n.out = out.id();
  TFM_CHECK(inputs.size() <= n.in.size(), "op {} has {} inputs", name, inputs.size());
  int k = 0;
  for (const Var& v : inputs) n.in[k++] = v.defined() ? v.id() : -1;
  return &n;
}

Tensor& Tape::grad(int32_t id) {
  Slot& s = slots_[id];
  if (!s.grad.defined()) s.grad = Tensor::zeros(s.value.shape());
  return s.grad;
}

void Tape::backward(Var loss) {
  TFM_CHECK(loss.value().numel() == 1, "backward needs a scalar loss, got {}", loss.value().str());
  backward(loss, Tensor::full({1}, 1.0f).view(loss.value().shape()));
}

void Tape::backward(Var out, const Tensor& out_grad) {
  TFM_CHECK(out.tape() == this, "backward of a var from another tape");
  TFM_CHECK(out_grad.shape() == out.value().shape(), "backward seed {} for output {}", out_grad.str(),
            out.value().str());
  if (!out.requires_grad()) return;
  ArenaScope scope(&arena_);
  grad(out.id()).copy_(out_grad);
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    if (!has_grad(it->out)) continue;  // the output did not influence the loss
    it->backward(*this, *it);
  }
}

void Tape::reset() {
  slots_.clear();
  nodes_.clear();
  arena_.reset();
}

}  // namespace tfm::ag
