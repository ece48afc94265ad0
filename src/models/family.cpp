#include "models/family.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace tfm {

extern const Family kSeedFamily;

const Family* find_family(const nlohmann::json& config) {
  static const Family* const families[] = {&kSeedFamily};
  for (const Family* f : families)
    if (f->matches(config)) return f;
  return nullptr;
}

namespace {

// Copies every parameter from `file` (names through `family`), converting dtypes; lists all missing
// and unexpected tensors in one error.
void load_weights(Transformer& model, const io::SafetensorsFile& file, const Family& family) {
  std::map<std::string, bool> used;
  for (const std::string& n : file.names())
    if (!family.is_buffer(n)) used[n] = false;
  std::string missing;
  for (Parameter* p : model.parameters().list()) {
    std::string src = family.checkpoint_name(p->name);
    if (!file.contains(src)) {
      missing += (missing.empty() ? "" : ", ") + src;
      continue;
    }
    used[src] = true;
    const io::TensorInfo& info = file.info(src);
    if (!(info.shape == p->value.shape()))
      fail("{}: tensor '{}': shape {} expected {}", file.path(), src, info.shape.str(),
           p->value.shape().str());
    p->value.copy_(file.get_f32(src));
  }
  std::string unexpected;
  for (const auto& [name, was_used] : used)
    if (!was_used) unexpected += (unexpected.empty() ? "" : ", ") + name;
  if (!missing.empty() || !unexpected.empty())
    fail("{}: weights do not match the {} model:{}{}", file.path(), family.name,
         missing.empty() ? "" : " missing [" + missing + "]",
         unexpected.empty() ? "" : " unexpected [" + unexpected + "]");
}

}  // namespace

std::unique_ptr<Transformer> load_pretrained(const std::string& dir) {
  std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(config_path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", config_path, e.what());
  }
  const Family* family = find_family(j);
  if (!family) fail("{}: no model family understands this config", config_path);
  auto model = std::make_unique<Transformer>(family->config(j, config_path));
  auto file = io::SafetensorsFile::open((std::filesystem::path(dir) / "model.safetensors").string());
  load_weights(*model, file, *family);
  return model;
}

}  // namespace tfm
