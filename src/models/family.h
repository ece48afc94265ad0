// A model family is a mapping, not a model: from its config.json onto ModelConfig, and from tfm's
// canonical parameter names onto the names its checkpoints use. Every family runs the one Transformer.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "models/config.h"
#include "models/transformer.h"

namespace tfm {

struct Family {
  const char* name;
  bool (*matches)(const nlohmann::json& config);
  ModelConfig (*config)(const nlohmann::json& config, const std::string& origin);
  std::string (*checkpoint_name)(const std::string& tfm_name);  // tfm name -> the family's name
  bool (*is_buffer)(const std::string& checkpoint_name);        // saved non-parameters tfm recomputes
};

// The family whose config this is, or nullptr when no family understands it.
const Family* find_family(const nlohmann::json& config);

// Loads `dir`/config.json and `dir`/model.safetensors into a new model. Errors name the file and the
// tensor: an unknown config, missing or unexpected weights (all listed), shape mismatches.
std::unique_ptr<Transformer> load_pretrained(const std::string& dir);

}  // namespace tfm
