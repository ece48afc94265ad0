#include "autograd/tape.h"

#include <unordered_map>

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
  slots_.push_back(Slot{p.value, needs ? p.grad : Tensor(), needs, needs ? &p : nullptr});
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

void Tape::backward(Var out, const Tensor& out_grad) { backward(out, out_grad, BackwardHooks{}); }

void Tape::backward(Var out, const Tensor& out_grad, const BackwardHooks& hooks) {
  TFM_CHECK(out.tape() == this, "backward of a var from another tape");
  TFM_CHECK(out_grad.shape() == out.value().shape(), "backward seed {} for output {}", out_grad.str(),
            out.value().str());
  if (!out.requires_grad()) return;
  ArenaScope scope(&arena_);
  grad(out.id()).copy_(out_grad);
  // A parameter's gradient is complete after the earliest node that reads it (nodes run last to first).
  std::vector<std::vector<Parameter*>> ready_after;
  if (hooks.param_ready) {
    std::unordered_map<Parameter*, size_t> first_use;
    for (size_t n = 0; n < nodes_.size(); ++n)
      for (int32_t id : nodes_[n].in)
        if (id >= 0 && slots_[size_t(id)].param) first_use.try_emplace(slots_[size_t(id)].param, n);
    ready_after.resize(nodes_.size());
    for (const Slot& s : slots_)
      if (s.param && !first_use.contains(s.param)) {
        first_use.emplace(s.param, nodes_.size());
        hooks.param_ready(*s.param);  // read by no node: nothing will add to it
      }
    for (auto [param, n] : first_use)
      if (n < nodes_.size()) ready_after[n].push_back(param);
  }
  for (size_t n = nodes_.size(); n-- > 0;) {
    const Node& node = nodes_[n];
    if (has_grad(node.out)) node.backward(*this, node);  // otherwise the output did not influence the loss
    if (hooks.param_ready)
      for (Parameter* p : ready_after[n]) hooks.param_ready(*p);
    if (hooks.after_node) hooks.after_node();
  }
}

void Tape::reset() {
  slots_.clear();
  nodes_.clear();
  arena_.reset();
}

}  // namespace tfm::ag
