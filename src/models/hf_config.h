// Reading Hugging Face config.json fields for the family mappings: a missing (or null) required field
// is an error naming it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace tfm {

class HfConfig {
 public:
  explicit HfConfig(const nlohmann::json& j) : j_(j) {
    if (!j_.is_object()) fail("config.json must be a JSON object");
  }

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  template <typename T>
  T need(const char* key) const {
    if (!has(key)) fail("config.json: missing field '{}'", key);
    return read<T>(key);
  }

  template <typename T>
  T get(const char* key, T fallback) const {
    return has(key) ? read<T>(key) : fallback;
  }

  const nlohmann::json& json() const { return j_; }

 private:
  template <typename T>
  T read(const char* key) const {
    try {
      return j_.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
      fail("config.json: field '{}': {}", key, e.what());
    }
  }

  const nlohmann::json& j_;
};

}  // namespace tfm
