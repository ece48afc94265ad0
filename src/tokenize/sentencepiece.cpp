#include "tokenize/sentencepiece.h"

#include <sentencepiece_processor.h>
#include <nlohmann/json.hpp>

#include <utility>

#include "core/base64.h"
#include "core/error.h"
#include "core/utf8.h"
#include "io/atomic_file.h"

namespace tfm::tokenize {

namespace {

constexpr int kWrapperVersion = 1;
constexpr const char* kWrapperKey = "tfm_sentencepiece";

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(
    std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor, std::string model_bytes)
    : processor_(std::move(processor)), model_bytes_(std::move(model_bytes)) {}

SentencePieceTokenizer SentencePieceTokenizer::load(const std::string& path) {
  return from_model_bytes(io::read_file(path), path);
}

SentencePieceTokenizer SentencePieceTokenizer::from_model_bytes(std::string bytes,
                                                                const std::string& origin) {
  if (bytes.empty()) fail("{}: not a SentencePiece model: the file is empty", origin);
  auto processor = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->LoadFromSerializedProto(bytes);
  if (!status.ok())
    fail("{}: not a SentencePiece model (corrupt or truncated?): {}", origin, status.ToString());
  return SentencePieceTokenizer(std::move(processor), std::move(bytes));
}

bool SentencePieceTokenizer::is_wrapper_json(const nlohmann::json& json) {
  return json.is_object() && json.contains(kWrapperKey);
}

SentencePieceTokenizer SentencePieceTokenizer::from_json(const nlohmann::json& json,
                                                         const std::string& origin) {
  if (!is_wrapper_json(json))
    fail("{}: no \"{}\" key: not a tfm SentencePiece tokenizer", origin, kWrapperKey);
  if (json[kWrapperKey] != kWrapperVersion)
    fail("{}: {} version {} is not supported (only {})", origin, kWrapperKey, json[kWrapperKey].dump(),
         kWrapperVersion);
  auto model = json.find("model");
  if (model == json.end() || !model->is_string()) fail("{}: \"model\" is missing or not a string", origin);
  std::string bytes =
      with_context(origin + ": model", [&] { return base64_decode(model->get<std::string>()); });
  return from_model_bytes(std::move(bytes), origin);
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  if (auto bad = find_invalid_utf8(text)) fail("cannot encode: invalid UTF-8 at byte offset {}", *bad);
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  if (!status.ok()) fail("SentencePiece encode failed: {}", status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode_run(std::span<const int32_t> ids) const {
  std::string text;
  const auto status = processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) fail("SentencePiece decode failed: {}", status.ToString());
  return text;
}

std::string SentencePieceTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_size()) fail("token id {} is outside the vocabulary [0, {})", id, vocab_size());
  if (skip_special) return decode_run(ids);
  // Runs between control pieces are decoded as spm does; the control pieces are written as their text.
  std::string text;
  size_t run_start = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!processor_->IsControl(ids[i])) continue;
    text += decode_run(ids.subspan(run_start, i - run_start));
    text += processor_->IdToPiece(ids[i]);
    run_start = i + 1;
  }
  return text + decode_run(ids.subspan(run_start));
}

int32_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = processor_->PieceToId(token);  // the unk id for a piece that is not in the model
  if (id < 0 || processor_->IdToPiece(id) != token) return std::nullopt;
  return id;
}

std::optional<std::string> SentencePieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return std::nullopt;
  return processor_->IdToPiece(id);
}

SpecialIds SentencePieceTokenizer::special_ids() const {
  return {.pad = processor_->pad_id(),
          .unk = processor_->unk_id(),
          .bos = processor_->bos_id(),
          .eos = processor_->eos_id()};
}

std::string SentencePieceTokenizer::to_json() const {
  const nlohmann::ordered_json json = {{kWrapperKey, kWrapperVersion},
                                       {"model", base64_encode(model_bytes_)}};
  return json.dump();
}

}  // namespace tfm::tokenize
