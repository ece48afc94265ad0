// Reverse-mode automatic differentiation over a tape.
//
// Every differentiable op (autograd/ops.h) computes its output with a kernel and, when any input
// needs a gradient, appends one Node: its inputs, its output, the tensors it saved, and a plain
// function pointer that computes the inputs' gradients from the output's. Nodes are appended in
// execution order, so walking them backwards is a valid topological order. Fused ops (attention,
// layer norm, softmax + cross-entropy) are single nodes with their own backward.
//
// The tape owns an Arena: while a Tape::Scope is active, every tensor made by the ops (activations,
// saved tensors, gradients of intermediates) comes from it, and reset() recycles all of it, so a
// training step in steady state does not touch the heap. Parameters' gradients live in the
// Parameters themselves and accumulate across backward() calls until zeroed.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "nn/parameter.h"
#include "tensor/arena.h"
#include "tensor/tensor.h"

namespace tfm::ag {

class Tape;

// A handle to a value on a tape. Cheap to copy; valid until the tape's reset().
class Var {
 public:
  Var() = default;
  Var(Tape* tape, int32_t id) : tape_(tape), id_(id) {}
  bool defined() const { return tape_ != nullptr; }
  Tape* tape() const { return tape_; }
  int32_t id() const { return id_; }
  // value() and grad() return by value (a Tensor shares its storage): a reference into the tape would
  // dangle as soon as another op grows the tape, e.g. in f(a.value(), op(b).value()).
  Tensor value() const;
  Shape shape() const { return value().shape(); }
  bool requires_grad() const;
  // The gradient of the loss with respect to this value (zeros until backward reaches it).
  Tensor grad() const;

 private:
  Tape* tape_ = nullptr;
  int32_t id_ = -1;
};

struct Node;
using BackwardFn = void (*)(Tape& tape, const Node& node);

struct Node {
  BackwardFn backward = nullptr;
  const char* name = "";
  int32_t out = -1;
  std::array<int32_t, 5> in{-1, -1, -1, -1, -1};
  std::array<Tensor, 4> saved;
  std::array<float, 4> f{};
  std::array<int64_t, 7> i{};
};

// What backward() tells its caller as it goes (data-parallel training starts sending a parameter's gradient
// as soon as it is complete, while backward goes on).
struct BackwardHooks {
  // Once for every parameter on the tape, as soon as no node is left that adds to its gradient.
  std::function<void(Parameter&)> param_ready;
  // After every node.
  std::function<void()> after_node;
};

class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // While alive, tensors made on this thread come from the tape's arena.
  class Scope {
   public:
    explicit Scope(Tape& tape) : scope_(&tape.arena_) {}

   private:
    ArenaScope scope_;
  };

  // A value that is an input of the computation (no gradient unless asked).
  Var leaf(const Tensor& value, bool requires_grad = false);
  // A parameter: its gradient accumulates into p.grad.
  Var param(Parameter& p);

  // Creates the output var of an op. When grad mode is on and any input requires a gradient, also
  // appends a node and returns it (fill in saved tensors / constants); otherwise returns nullptr.
  Node* record(Var& out, const Tensor& value, const char* name, BackwardFn fn,
               std::initializer_list<Var> inputs);

  // d loss / d everything: seeds d loss / d loss = 1 (loss must have one element) and runs the tape
  // backwards.
  void backward(Var loss);
  // Vector-Jacobian product: runs the tape backwards from `out` seeded with `out_grad` (same shape).
  void backward(Var out, const Tensor& out_grad);
  void backward(Var out, const Tensor& out_grad, const BackwardHooks& hooks);

  // Forgets every var and node and recycles the arena (tensors from it become invalid).
  void reset();

  void set_grad_enabled(bool on) { grad_enabled_ = on; }
  bool grad_enabled() const { return grad_enabled_; }
  Arena& arena() { return arena_; }
  size_t node_count() const { return nodes_.size(); }

  // Used by Var and by backward functions.
  const Tensor& value(int32_t id) const { return slots_[id].value; }
  bool requires_grad(int32_t id) const { return id >= 0 && slots_[id].requires_grad; }
  Tensor& grad(int32_t id);  // allocates zeros on first use
  bool has_grad(int32_t id) const { return slots_[id].grad.defined(); }

 private:
  struct Slot {
    Tensor value;
    Tensor grad;
    bool requires_grad = false;
    Parameter* param = nullptr;  // for a parameter's slot
  };
  std::vector<Slot> slots_;
  std::vector<Node> nodes_;
  Arena arena_;
  bool grad_enabled_ = true;
};

// Gradient mode off for its lifetime (inference): ops record nothing.
class NoGrad {
 public:
  explicit NoGrad(Tape& t) : tape_(t), previous_(t.grad_enabled()) { t.set_grad_enabled(false); }
  ~NoGrad() { tape_.set_grad_enabled(previous_); }

 private:
  Tape& tape_;
  bool previous_;
};

}  // namespace tfm::ag
