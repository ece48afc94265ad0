#include "models/family.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/quantize.h"

namespace tfm {

extern const Family kSeedFamily, kMarianFamily, kGpt2Family, kLlamaFamily, kMistralFamily, kMixtralFamily,
    kBloomFamily, kT5Family, kBertFamily;

namespace {

const Family* const kFamilies[] = {&kSeedFamily,  &kMarianFamily,  &kGpt2Family,
                                   &kLlamaFamily, &kMistralFamily, &kMixtralFamily,
                                   &kBloomFamily, &kT5Family,      &kBertFamily};

// `s` without its leading 1-dimensions.
Shape squeeze_leading(const Shape& s) {
  Shape out;
  int i = 0;
  while (i + 1 < s.size() && s[i] == 1) ++i;
  for (; i < s.size(); ++i) out.push_back(s[i]);
  return out;
}

// The shape of the whole checkpoint tensor that holds `param` as `at` describes.
Shape checkpoint_shape(const Shape& param, const Placement& at) {
  Shape s = param;
  s[0] *= at.parts;
  if (at.transposed) std::swap(s[0], s[1]);
  return s;
}

// The rows of `whole` (checkpoint tensor after un-transposing, [rows, ...]) that belong to the
// parameter: a strided [groups, chunk, ...] view.
Tensor part_view(const Tensor& whole, const Placement& at) {
  const Shape& s = whole.shape();
  int64_t chunk = s[0] / (int64_t(at.groups) * at.parts);
  Shape blocks{at.groups, at.parts, chunk};
  for (int i = 1; i < s.size(); ++i) blocks.push_back(s[i]);
  return whole.view(blocks).select(1, at.part);
}

// [groups, chunk, ...] view of a parameter-shaped tensor.
Tensor grouped(const Tensor& t, const Placement& at) {
  Shape g{at.groups, t.size(0) / at.groups};
  for (int i = 1; i < t.dim(); ++i) g.push_back(t.size(i));
  return t.view(g);
}

void check_placement(const Parameter& p, const Placement& at) {
  TFM_CHECK(at.parts >= 1 && at.part >= 0 && at.part < at.parts && at.groups >= 1, "bad placement of {}",
            p.name);
  TFM_CHECK(p.shape()[0] % at.groups == 0, "placement of {}: {} rows in {} groups", p.name, p.shape()[0],
            at.groups);
  TFM_CHECK(!at.transposed || p.shape().size() == 2, "placement of {}: only matrices are transposed", p.name);
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

}  // namespace

const Family* find_family_named(const std::string& name) {
  for (const Family* f : kFamilies)
    if (name == f->name) return f;
  return nullptr;
}

const Family* find_family(const nlohmann::json& config) {
  if (config.is_object() && config.contains("model_type")) {
    const nlohmann::json& type = config["model_type"];
    if (!type.is_string()) fail("config.json: model_type {} is not a string", type.dump());
    for (const Family* f : kFamilies)
      if (type.get<std::string>() == f->name) return f;
    fail("config.json: unknown model_type '{}' (supported: {})", type.get<std::string>(),
         known_model_types());
  }
  for (const Family* f : kFamilies)
    if (f->matches(config)) return f;
  return nullptr;
}

std::string known_model_types() {
  std::string s;
  for (const Family* f : kFamilies)
    if (std::string(f->name) != "seed") s += (s.empty() ? "" : ", ") + std::string(f->name);
  return s;
}

std::map<std::string, DType> load_family_weights(Transformer& model, const std::string& path,
                                                 const Family& family) {
  auto file = io::SafetensorsFile::open(path);
  std::map<std::string, DType> stored;
  with_context(path, [&] {
    // Parameters grouped by the checkpoint tensor that holds them.
    std::map<std::string, std::vector<std::pair<Parameter*, Placement>>> by_tensor;
    for (Parameter* p : model.parameters().list()) {
      Placement at = family.placement(p->name, model.config());
      check_placement(*p, at);
      by_tensor[at.name].emplace_back(p, at);
    }
    std::vector<std::string> missing, unexpected, mismatched;
    for (const std::string& n : file.names())
      if (!by_tensor.count(n) && !family.ignored(n)) unexpected.push_back(n);
    for (const auto& [name, params] : by_tensor) {
      if (!file.contains(name)) {
        missing.push_back(name);
        continue;
      }
      const auto& [first, first_at] = params.front();
      Shape want = checkpoint_shape(first->value.shape(), first_at);
      Shape got = file.info(name).shape;
      if (!(squeeze_leading(got) == squeeze_leading(want))) {
        mismatched.push_back(fmt::format("tensor '{}': shape {} expected {}", name, got.str(), want.str()));
        continue;
      }
      Tensor whole = file.get_f32(name).view(want);
      if (first_at.transposed) whole = whole.transpose(0, 1).contiguous();
      for (const auto& [p, at] : params) {
        grouped(p->value, at).copy_(part_view(whole, at));
        stored[p->name] = file.info(name).dtype;
      }
    }
    std::string shapes;
    for (const std::string& m : mismatched) shapes += (shapes.empty() ? "" : "; ") + m;
    if (!mismatched.empty() && missing.empty() && unexpected.empty()) fail("{}", shapes);
    if (!missing.empty() || !unexpected.empty())
      fail("weights do not match the {} model:{}{}{}", family.name,
           missing.empty() ? "" : " missing [" + joined(missing) + "]",
           unexpected.empty() ? "" : " unexpected [" + joined(unexpected) + "]",
           shapes.empty() ? "" : "; " + shapes);
  });
  return stored;
}

std::vector<std::pair<std::string, Tensor>> checkpoint_tensors(Transformer& model, const Family& family,
                                                               bool gradients) {
  std::vector<std::pair<std::string, Tensor>> out;  // in the un-transposed row layout until the end
  std::vector<bool> transposed;
  std::map<std::string, size_t> index;
  for (Parameter* p : model.parameters().list()) {
    Placement at = family.placement(p->name, model.config());
    check_placement(*p, at);
    auto [it, fresh] = index.emplace(at.name, out.size());
    if (fresh) {
      Shape rows = p->shape();
      rows[0] *= at.parts;
      out.emplace_back(at.name, Tensor::zeros_persistent(rows));
      transposed.push_back(at.transposed);
    }
    part_view(out[it->second].second, at).copy_(grouped(gradients ? p->grad : p->float_value(), at));
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (transposed[i]) out[i].second = out[i].second.transpose(0, 1).clone(/*persistent=*/true);
  return out;
}

Pretrained load_pretrained(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string config_path = (fs::path(dir) / "config.json").string();
  Pretrained out;
  ModelConfig config = with_context(config_path, [&] {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(io::read_file(config_path));
    } catch (const nlohmann::json::exception& e) {
      fail("invalid JSON: {}", e.what());
    }
    out.family = find_family(j);
    if (!out.family) fail("no model family understands this config (no model_type)");
    return out.family->config(j);
  });
  out.model = std::make_unique<Transformer>(config);
  keep_half_precision(
      *out.model,
      load_family_weights(*out.model, (fs::path(dir) / "model.safetensors").string(), *out.family));
  fs::path tokenizer = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tokenizer)) out.tokenizer = tokenize::load_tokenizer(tokenizer.string());
  return out;
}

}  // namespace tfm
