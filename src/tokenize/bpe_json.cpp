// BpeTokenizer <-> Hugging Face tokenizer.json, and GPT-2's encoder.json + vocab.bpe.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "tokenize/bpe.h"
#include "tokenize/json_fields.h"

namespace tfm::tokenize {

namespace {

using OrderedJson = nlohmann::ordered_json;

// The "type" of `json[key]` (an object), or "" when it is null or absent.
std::string component_type(const nlohmann::json& json, const char* key) {
  if (is_null_or_absent(json, key)) return "";
  const nlohmann::json& component = json[key];
  if (!component.is_object() || !component.contains("type") || !component["type"].is_string())
    fail("{} has no type", key);
  return component["type"].get<std::string>();
}

ByteLevelOptions byte_level_from_json(const nlohmann::json& json, const char* where) {
  return {.add_prefix_space = optional_bool_member(json, "add_prefix_space", true, where),
          .trim_offsets = optional_bool_member(json, "trim_offsets", true, where),
          .use_regex = optional_bool_member(json, "use_regex", true, where)};
}

OrderedJson byte_level_to_json(const ByteLevelOptions& options) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", options.add_prefix_space},
          {"trim_offsets", options.trim_offsets},
          {"use_regex", options.use_regex}};
}

// "a b" (the two tokens around the one space), as merges files and older tokenizer.json spell a merge.
std::optional<Merge> split_merge_line(std::string_view line) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
    return std::nullopt;
  return Merge{std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
}

std::vector<Merge> merges_from_json(const nlohmann::json& model) {
  if (!model.contains("merges") || !model["merges"].is_array())
    fail("model.merges is missing or not an array");
  const nlohmann::json& merges_json = model["merges"];
  std::vector<Merge> merges;
  merges.reserve(merges_json.size());
  for (size_t i = 0; i < merges_json.size(); ++i) {
    const nlohmann::json& entry = merges_json[i];
    if (entry.is_string()) {
      auto merge = split_merge_line(entry.get_ref<const std::string&>());
      if (!merge) fail("model.merges[{}] = {} is not two tokens separated by one space", i, entry.dump());
      merges.push_back(std::move(*merge));
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
      merges.push_back({entry[0].get<std::string>(), entry[1].get<std::string>()});
    } else {
      fail("model.merges[{}] = {} is neither \"a b\" nor [\"a\", \"b\"]", i, entry.dump());
    }
  }
  return merges;
}

BpeOptions options_from_json(const nlohmann::json& json, const nlohmann::json& model) {
  for (const char* part : {"normalizer", "truncation", "padding"}) expect_null_or_absent(json, part, "");
  for (const char* option : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"})
    expect_null_or_absent(model, option, "model");
  if (optional_bool_member(model, "byte_fallback", false, "model"))
    fail("model.byte_fallback is not supported");

  BpeOptions options;
  if (component_type(json, "pre_tokenizer") != "ByteLevel")
    fail("pre_tokenizer must be ByteLevel (found {})", json.value("pre_tokenizer", nlohmann::json()).dump());
  options.pre_tokenizer = byte_level_from_json(json["pre_tokenizer"], "pre_tokenizer");
  if (component_type(json, "decoder") != "ByteLevel")
    fail("decoder must be ByteLevel (found {})", json.value("decoder", nlohmann::json()).dump());
  options.decoder = byte_level_from_json(json["decoder"], "decoder");
  if (!is_null_or_absent(model, "unk_token")) {
    if (!model["unk_token"].is_string()) fail("model.unk_token is not a string");
    options.unk_token = model["unk_token"].get<std::string>();
  }
  options.fuse_unk = optional_bool_member(model, "fuse_unk", false, "model");
  options.ignore_merges = optional_bool_member(model, "ignore_merges", false, "model");
  options.added_tokens = added_tokens_from_json(json);
  return options;
}

}  // namespace

BpeTokenizer BpeTokenizer::from_json(const nlohmann::json& json, const std::string& origin) {
  return with_context(origin, [&] {
    if (!json.is_object() || !json.contains("model") || !json["model"].is_object())
      fail("model is missing or not an object");
    const nlohmann::json& model = json["model"];
    if (model.value("type", "") != "BPE")
      fail("model.type is {}, not BPE", model.value("type", nlohmann::json()).dump());
    if (!model.contains("vocab")) fail("model.vocab is missing");
    std::vector<std::string> vocab = dense_vocab(model["vocab"], "model.vocab");
    BpeOptions options = options_from_json(json, model);
    const std::string post_processor = component_type(json, "post_processor");
    if (post_processor == "ByteLevel") {  // changes only offsets, not ids
      options.byte_level_post_processor = byte_level_from_json(json["post_processor"], "post_processor");
    } else if (post_processor == "TemplateProcessing") {
      // Only the added tokens with ids past the model's vocabulary extend it; the others are its tokens.
      const auto extra =
          std::count_if(options.added_tokens.begin(), options.added_tokens.end(),
                        [&](const AddedToken& token) { return token.id >= int64_t(vocab.size()); });
      const int32_t vocab_size = int32_t(vocab.size() + size_t(extra));
      options.post_processor = TemplateProcessing::from_json(json["post_processor"], vocab_size);
    } else if (!post_processor.empty()) {
      fail("post_processor {} is not supported (supported: TemplateProcessing, ByteLevel)", post_processor);
    }
    return BpeTokenizer(std::move(vocab), merges_from_json(model), std::move(options));
  });
}

BpeTokenizer BpeTokenizer::from_gpt2_files(const std::string& vocab_path, const std::string& merges_path) {
  std::vector<std::string> vocab = with_context(vocab_path, [&] {
    try {
      return dense_vocab(nlohmann::json::parse(io::read_file(vocab_path)), "vocabulary");
    } catch (const nlohmann::json::exception& e) {
      fail("invalid JSON: {}", e.what());
    }
  });
  std::vector<Merge> merges;
  std::istringstream lines(io::read_file(merges_path));
  int64_t line_number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_number;
    if (line_number == 1 && line.starts_with("#version")) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto merge = split_merge_line(line);
    if (!merge) fail("{}:{}: '{}' is not two tokens separated by one space", merges_path, line_number, line);
    merges.push_back(std::move(*merge));
  }
  BpeOptions options;  // GPT-2: ByteLevel without a prefix space, no added tokens
  return with_context(merges_path,
                      [&] { return BpeTokenizer(std::move(vocab), std::move(merges), options); });
}

std::string BpeTokenizer::to_json() const {
  OrderedJson merges = OrderedJson::array();
  for (const auto& [first, second] : this->merges()) merges.push_back({first, second});
  OrderedJson post_processor = nullptr;
  if (options_.post_processor)
    post_processor = options_.post_processor->to_json();
  else if (options_.byte_level_post_processor)
    post_processor = byte_level_to_json(*options_.byte_level_post_processor);
  OrderedJson model = {{"type", "BPE"},
                       {"dropout", nullptr},
                       {"unk_token", options_.unk_token ? OrderedJson(*options_.unk_token) : OrderedJson()},
                       {"continuing_subword_prefix", nullptr},
                       {"end_of_word_suffix", nullptr},
                       {"fuse_unk", options_.fuse_unk},
                       {"byte_fallback", false},
                       {"ignore_merges", options_.ignore_merges},
                       {"vocab", vocab_to_json(std::span(tokens_).first(size_t(model_vocab_size_)))},
                       {"merges", std::move(merges)}};
  OrderedJson json = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", added_tokens_to_json(options_.added_tokens)},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", byte_level_to_json(options_.pre_tokenizer)},
                      {"post_processor", std::move(post_processor)},
                      {"decoder", byte_level_to_json(options_.decoder)},
                      {"model", std::move(model)}};
  return json.dump(2);
}

}  // namespace tfm::tokenize
