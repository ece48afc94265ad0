#include "nn/parameter_store.h"

#include "core/error.h"

namespace tfm {

Parameter& ParameterStore::add(const std::string& name, const Shape& shape) {
  TFM_CHECK(!by_name_.count(name), "parameter {} added twice", name);
  Parameter& p = params_.emplace_back(name, shape);
  by_name_[name] = &p;
  return p;
}

Parameter* ParameterStore::find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const Parameter* ParameterStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Parameter& ParameterStore::at(const std::string& name) {
  Parameter* p = find(name);
  if (!p) fail("no parameter named '{}'", name);
  return *p;
}

ParameterList ParameterStore::list() {
  ParameterList out;
  for (Parameter& p : params_) out.push_back(&p);
  return out;
}

int64_t ParameterStore::numel() const {
  int64_t n = 0;
  for (const Parameter& p : params_) n += p.shape().numel();
  return n;
}

}  // namespace tfm
