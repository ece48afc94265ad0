// WordPieceTokenizer <-> the Hugging Face tokenizer.json format (what tokenizers.Tokenizer.from_str reads).
#include <nlohmann/json.hpp>

#include <utility>

#include "core/error.h"
#include "tokenize/json_fields.h"
#include "tokenize/wordpiece.h"

namespace tfm::tokenize {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

void expect_type(const Json& object, const char* type, const char* where) {
  if (string_member(object, "type", where) != type)
    fail("{} {} is not supported with WordPiece (only {})", where, object.dump(), type);
}

BertNormalizerOptions normalizer_from_json(const Json& normalizer) {
  expect_type(normalizer, "BertNormalizer", "normalizer");
  BertNormalizerOptions options;
  options.clean_text = bool_member(normalizer, "clean_text", "normalizer");
  options.handle_chinese_chars = bool_member(normalizer, "handle_chinese_chars", "normalizer");
  options.lowercase = bool_member(normalizer, "lowercase", "normalizer");
  if (!is_null_or_absent(normalizer, "strip_accents"))
    options.strip_accents = bool_member(normalizer, "strip_accents", "normalizer");
  return options;
}

std::optional<WordPieceDecoderOptions> decoder_from_json(const Json& decoder) {
  if (decoder.is_null()) return std::nullopt;
  expect_type(decoder, "WordPiece", "decoder");
  return WordPieceDecoderOptions{.prefix = string_member(decoder, "prefix", "decoder"),
                                 .cleanup = bool_member(decoder, "cleanup", "decoder")};
}

// BertProcessing {"cls": [token, id], "sep": [token, id]}: "[CLS] $A [SEP]".
void bert_processing_from_json(const Json& processor, WordPieceOptions& options) {
  for (const char* key : {"cls", "sep"}) {
    const Json& pair = member(processor, key, "post_processor");
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string())
      fail("post_processor.{} is {}, not [token, id]", key, pair.dump());
    (key == std::string_view("cls") ? options.template_prefix : options.template_suffix)
        .push_back(pair[0].get<std::string>());
  }
}

// TemplateProcessing: the "single" template, special tokens around one sequence "A". Its special_tokens
// entries name the tokens each special piece stands for.
void template_processing_from_json(const Json& processor, WordPieceOptions& options) {
  const Json& single = member(processor, "single", "post_processor");
  const Json& specials = member(processor, "special_tokens", "post_processor");
  if (!single.is_array()) fail("post_processor.single is not an array");
  bool seen_sequence = false;
  for (const Json& piece : single) {
    if (piece.contains("Sequence")) {
      if (seen_sequence || string_member(piece["Sequence"], "id", "Sequence") != "A")
        fail("post_processor.single {} is not supported (one sequence $A only)", single.dump());
      seen_sequence = true;
      continue;
    }
    const std::string name = string_member(member(piece, "SpecialToken", "single[]"), "id", "SpecialToken");
    const Json& tokens = member(member(specials, name.c_str(), "special_tokens"), "tokens", name.c_str());
    if (!tokens.is_array()) fail("special_tokens.{}.tokens is not an array", name);
    for (const Json& token : tokens) {
      if (!token.is_string()) fail("special_tokens.{}.tokens holds {}", name, token.dump());
      (seen_sequence ? options.template_suffix : options.template_prefix).push_back(token.get<std::string>());
    }
  }
  if (!seen_sequence) fail("post_processor.single {} has no sequence $A", single.dump());
}

void check_template_ids(const WordPieceTokenizer& tokenizer, const Json& processor) {
  // The ids written beside the tokens must agree with the vocabulary.
  const auto check = [&](const std::string& token, const Json& id) {
    if (id != Json(tokenizer.token_to_id(token).value_or(-1)))
      fail("post_processor gives '{}' the id {}; the vocabulary has {}", token, id.dump(),
           tokenizer.token_to_id(token).value_or(-1));
  };
  if (processor["type"] == "BertProcessing") {
    for (const char* key : {"cls", "sep"}) check(processor[key][0].get<std::string>(), processor[key][1]);
    return;
  }
  for (const auto& [name, special] : processor["special_tokens"].items()) {
    const Json& ids = member(special, "ids", name.c_str());
    const Json& tokens = member(special, "tokens", name.c_str());
    if (!ids.is_array() || !tokens.is_array() || ids.size() != tokens.size())
      fail("special_tokens.{}: ids {} do not match tokens {}", name, ids.dump(), tokens.dump());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!tokens[i].is_string()) fail("special_tokens.{}.tokens holds {}", name, tokens[i].dump());
      check(tokens[i].get<std::string>(), ids[i]);
    }
  }
}

OrderedJson special_piece(const std::string& token, int type_id) {
  return {{"SpecialToken", {{"id", token}, {"type_id", type_id}}}};
}

OrderedJson sequence_piece(const char* name, int type_id) {
  return {{"Sequence", {{"id", name}, {"type_id", type_id}}}};
}

// "prefix $A suffix" as HF's TemplateProcessing; pairs "prefix $A suffix $B:1 suffix:1", as BertProcessing.
OrderedJson template_processing(const WordPieceTokenizer& tokenizer) {
  const WordPieceOptions& options = tokenizer.options();
  OrderedJson single = OrderedJson::array(), pair = OrderedJson::array();
  OrderedJson specials = OrderedJson::object();
  for (const std::string& token : options.template_prefix) {
    single.push_back(special_piece(token, 0));
    pair.push_back(special_piece(token, 0));
  }
  single.push_back(sequence_piece("A", 0));
  pair.push_back(sequence_piece("A", 0));
  for (const std::string& token : options.template_suffix) {
    single.push_back(special_piece(token, 0));
    pair.push_back(special_piece(token, 0));
  }
  pair.push_back(sequence_piece("B", 1));
  for (const std::string& token : options.template_suffix) pair.push_back(special_piece(token, 1));
  for (const auto* tokens : {&options.template_prefix, &options.template_suffix})
    for (const std::string& token : *tokens)
      specials[token] = {{"id", token}, {"ids", {*tokenizer.token_to_id(token)}}, {"tokens", {token}}};
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_json(const nlohmann::json& json, const std::string& origin) {
  return with_context(origin, [&] {
    const Json& model = member(json, "model", "");
    expect_type(model, "WordPiece", "model");
    for (const char* part : {"truncation", "padding"}) expect_null_or_absent(json, part, "");
    expect_type(member(json, "pre_tokenizer", ""), "BertPreTokenizer", "pre_tokenizer");

    std::vector<std::string> vocab = dense_vocab(member(model, "vocab", "model"), "model.vocab");
    WordPieceOptions options;
    options.normalizer = normalizer_from_json(member(json, "normalizer", ""));
    options.unk_token = string_member(model, "unk_token", "model");
    options.continuing_subword_prefix = string_member(model, "continuing_subword_prefix", "model");
    options.max_input_chars_per_word = count_member(model, "max_input_chars_per_word", "model");
    options.special_tokens = special_tokens_from_json(json, vocab, /*reject_normalized=*/true);
    options.decoder = decoder_from_json(json.value("decoder", Json()));
    const Json processor = json.value("post_processor", Json());
    if (!processor.is_null()) {
      const std::string type = string_member(processor, "type", "post_processor");
      if (type == "BertProcessing") {
        bert_processing_from_json(processor, options);
      } else if (type == "TemplateProcessing") {
        template_processing_from_json(processor, options);
      } else {
        fail("post_processor type '{}' is not supported (BertProcessing, TemplateProcessing)", type);
      }
    }
    WordPieceTokenizer tokenizer(std::move(vocab), std::move(options));
    if (!processor.is_null()) {
      check_template_ids(tokenizer, processor);
      tokenizer.post_processor_json_ = processor.dump();
    }
    return tokenizer;
  });
}

std::string WordPieceTokenizer::to_json() const {
  const BertNormalizerOptions& norm = options_.normalizer;
  OrderedJson normalizer = {{"type", "BertNormalizer"},
                            {"clean_text", norm.clean_text},
                            {"handle_chinese_chars", norm.handle_chinese_chars},
                            {"strip_accents", nullptr},
                            {"lowercase", norm.lowercase}};
  if (norm.strip_accents) normalizer["strip_accents"] = *norm.strip_accents;
  OrderedJson post_processor = nullptr;
  if (!post_processor_json_.empty()) {
    post_processor = OrderedJson::parse(post_processor_json_);
  } else if (!template_prefix_.empty() || !template_suffix_.empty()) {
    post_processor = template_processing(*this);
  }
  OrderedJson decoder = nullptr;
  if (options_.decoder)
    decoder = {
        {"type", "WordPiece"}, {"prefix", options_.decoder->prefix}, {"cleanup", options_.decoder->cleanup}};
  OrderedJson json = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", special_tokens_json(/*sorted_by_id=*/true)},
                      {"normalizer", std::move(normalizer)},
                      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
                      {"post_processor", std::move(post_processor)},
                      {"decoder", std::move(decoder)},
                      {"model",
                       {{"type", "WordPiece"},
                        {"unk_token", options_.unk_token},
                        {"continuing_subword_prefix", options_.continuing_subword_prefix},
                        {"max_input_chars_per_word", options_.max_input_chars_per_word},
                        {"vocab", vocab_to_json(vocab_)}}}};
  return json.dump(2);
}

}  // namespace tfm::tokenize
