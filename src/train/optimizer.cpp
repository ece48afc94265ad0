#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"

namespace tfm::train {
namespace {

// Below this many elements a parameter is updated on one thread: forking costs more than it saves.
constexpr int64_t kParallelThreshold = int64_t(1) << 15;

void check_parameter(const Parameter& p) {
  const auto check_tensor = [&](const Tensor& t, const char* what) {
    if (!t.defined()) fail("parameter '{}': {} is undefined", p.name, what);
    if (t.dtype() != DType::F32 || !t.is_contiguous())
      fail("parameter '{}': {} must be contiguous float32, got {}", p.name, what, t.str());
  };
  check_tensor(p.value, "value");
  if (!p.trainable) return;  // a frozen parameter may have no gradient buffer
  check_tensor(p.grad, "grad");
  if (!(p.grad.shape() == p.value.shape()))
    fail("parameter '{}': grad shape {} differs from value shape {}", p.name, p.grad.shape().str(),
         p.value.shape().str());
}

void check_options(const AdamOptions& o) {
  const auto unit = [](float x) { return x >= 0.0f && x < 1.0f; };
  if (!unit(o.beta1) || !unit(o.beta2))
    fail("optimizer: betas must lie in [0, 1), got {} and {}", o.beta1, o.beta2);
  if (!(o.eps >= 0.0f)) fail("optimizer: eps must be >= 0, got {}", o.eps);
  if (!(o.weight_decay >= 0.0f)) fail("optimizer: weight_decay must be >= 0, got {}", o.weight_decay);
}

std::string exp_avg_name(const Parameter& p) { return p.name + ".exp_avg"; }
std::string exp_avg_sq_name(const Parameter& p) { return p.name + ".exp_avg_sq"; }

// The per-step scalars of one update, computed in double and rounded once to float.
struct StepScalars {
  float decay_factor;  // AdamW: p *= decay_factor
  float l2;            // Adam: g += l2 * p
  float one_minus_beta1, one_minus_beta2;
  float step_size;  // lr / bias_correction1
  float bias_correction2_sqrt;
};

StepScalars step_scalars(const AdamOptions& o, double lr, int64_t t) {
  const double bias_correction1 = 1.0 - std::pow(double(o.beta1), double(t));
  const double bias_correction2 = 1.0 - std::pow(double(o.beta2), double(t));
  StepScalars s;
  s.decay_factor = o.decoupled ? float(1.0 - lr * double(o.weight_decay)) : 1.0f;
  s.l2 = o.decoupled ? 0.0f : o.weight_decay;
  s.one_minus_beta1 = float(1.0 - double(o.beta1));
  s.one_minus_beta2 = float(1.0 - double(o.beta2));
  s.step_size = float(lr / bias_correction1);
  s.bias_correction2_sqrt = float(std::sqrt(bias_correction2));
  return s;
}

// One fused pass over a parameter: decay, moments, update (torch.optim's single-tensor path, 1.13).
void adam_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamOptions& o,
                 const StepScalars& s) {
  const float beta1 = o.beta1, beta2 = o.beta2, eps = o.eps;
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    float param = p[i] * s.decay_factor;
    const float grad = g[i] + s.l2 * p[i];
    const float exp_avg = m[i] * beta1 + grad * s.one_minus_beta1;
    const float exp_avg_sq = v[i] * beta2 + grad * grad * s.one_minus_beta2;
    const float denom = std::sqrt(exp_avg_sq) / s.bias_correction2_sqrt + eps;
    param += -s.step_size * (exp_avg / denom);
    m[i] = exp_avg;
    v[i] = exp_avg_sq;
    p[i] = param;
  }
}

}  // namespace

Adam::Adam(ParameterList params, AdamOptions options) : params_(std::move(params)), options_(options) {
  check_options(options_);
  std::set<std::string> names;
  for (const Parameter* p : params_) {
    TFM_CHECK(p != nullptr, "null parameter passed to the optimizer");
    if (!names.insert(p->name).second) fail("optimizer: parameter '{}' listed twice", p->name);
    check_parameter(*p);
    const bool stateful = p->trainable;
    m_.push_back(stateful ? Tensor::zeros_persistent(p->value.shape()) : Tensor());
    v_.push_back(stateful ? Tensor::zeros_persistent(p->value.shape()) : Tensor());
  }
}

void Adam::zero_grad() {
  for (Parameter* p : params_)
    if (p->trainable) p->grad.zero_();
}

void Adam::step(float lr) {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i]->trainable && !m_[i].defined())
      fail(
          "optimizer: parameter '{}' was frozen when the optimizer was made; make a new one after unfreezing",
          params_[i]->name);
  ++t_;
  const StepScalars s = step_scalars(options_, double(lr), t_);
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (!p.trainable) continue;
    adam_update(p.value.f32(), p.grad.f32(), m_[i].f32(), v_[i].f32(), p.value.numel(), options_, s);
  }
}

std::map<std::string, Tensor> Adam::state() const {
  std::map<std::string, Tensor> state;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i]->trainable) continue;
    state.emplace(exp_avg_name(*params_[i]), m_[i]);
    state.emplace(exp_avg_sq_name(*params_[i]), v_[i]);
  }
  return state;
}

void Adam::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  if (steps < 0) fail("optimizer state: negative step count {}", steps);
  std::set<std::string> expected;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i]->trainable) continue;
    for (const std::string& name : {exp_avg_name(*params_[i]), exp_avg_sq_name(*params_[i])}) {
      const auto it = state.find(name);
      if (it == state.end()) fail("optimizer state: tensor '{}' is missing", name);
      if (!(it->second.shape() == params_[i]->value.shape()))
        fail("optimizer state: tensor '{}': shape {} expected {}", name, it->second.shape().str(),
             params_[i]->value.shape().str());
      expected.insert(name);
    }
  }
  for (const auto& [name, tensor] : state)
    if (!expected.count(name))
      fail("optimizer state: unexpected tensor '{}' (no such trainable parameter)", name);
  // Everything is validated: nothing below can leave the optimizer half loaded.
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i]->trainable) continue;
    m_[i].copy_(state.at(exp_avg_name(*params_[i])));
    v_[i].copy_(state.at(exp_avg_sq_name(*params_[i])));
  }
  t_ = steps;
}

namespace {

// Sum of squares in fixed-size blocks, added up in block order: the result does not depend on the
// number of threads, so a resumed run reproduces an uninterrupted one bit for bit.
constexpr int64_t kNormBlock = int64_t(1) << 16;

double sum_of_squares(const float* x, int64_t n) {
  const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
  // Reused across calls: no allocation once it has grown. (Thread-local, so the parallel loop below
  // must use a pointer to the calling thread's buffer, never the name.)
  thread_local std::vector<double> buffer;
  buffer.assign(size_t(blocks), 0.0);
  double* partial = buffer.data();
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kNormBlock);
    double s = 0.0;
    for (int64_t i = b * kNormBlock; i < end; ++i) s += double(x[i]) * double(x[i]);
    partial[b] = s;
  }
  double total = 0.0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  return total;
}

void scale(float* x, int64_t n, float factor) {
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

}  // namespace

double grad_squares(const ParameterList& params) {
  double total = 0.0;
  for (const Parameter* p : params) {
    if (!p->trainable) continue;
    TFM_CHECK(p->grad.is_contiguous(), "gradient of '{}' is not contiguous", p->name);
    total += sum_of_squares(p->grad.f32(), p->grad.numel());
  }
  return total;
}

double grad_norm(const ParameterList& params) { return std::sqrt(grad_squares(params)); }

namespace {

// Multiplies the gradient of every trainable parameter by `factor`.
void scale_gradients(const ParameterList& params, float factor) {
  for (Parameter* p : params)
    if (p->trainable) scale(p->grad.f32(), p->grad.numel(), factor);
}

}  // namespace

float clip_grad_norm(const ParameterList& params, float max_norm, float unscale) {
  const double norm = grad_norm(params) * double(unscale);
  clip_to_norm(params, norm, max_norm, unscale);
  return float(norm);
}

void clip_to_norm(const ParameterList& params, double norm, float max_norm, float unscale) {
  if (!(max_norm > 0.0f)) fail("clip_grad_norm: max_norm must be positive, got {}", max_norm);
  if (!std::isfinite(norm)) return;
  const double factor = double(unscale) * std::min(1.0, double(max_norm) / (norm + 1e-6));
  if (factor != 1.0) scale_gradients(params, float(factor));
}

}  // namespace tfm::train
