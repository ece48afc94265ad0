// Owns a model's parameters in creation order, with stable addresses, looked up by canonical name.
#pragma once

#include <deque>
#include <map>
#include <string>

#include "nn/parameter.h"

namespace tfm {

class ParameterStore {
 public:
  Parameter& add(const std::string& name, const Shape& shape);
  Parameter* find(const std::string& name);
  const Parameter* find(const std::string& name) const;
  Parameter& at(const std::string& name);  // throws tfm::Error naming the missing parameter
  ParameterList list();
  size_t size() const { return params_.size(); }
  int64_t numel() const;

 private:
  std::deque<Parameter> params_;
  std::map<std::string, Parameter*> by_name_;
};

}  // namespace tfm
