// SentencePiece tokenizers (the .model files Llama, T5 and Marian ship), run by Google's libsentencepiece:
// encode and decode are exactly what spm_encode / spm_decode give for the same model.
//
// A SentencePiece model has no Hugging Face tokenizer.json form here, so to_json() writes a tfm-specific
// wrapper that load_tokenizer_json() reads back (checkpoints embed a tokenizer's JSON):
//   {"tfm_sentencepiece": 1, "model": "<the .model file's bytes, base64 (RFC 4648, with padding)>"}
// "tfm_sentencepiece" is the wrapper's format version. hash() is thus a hash of the model's bytes.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

#include "tokenize/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tfm::tokenize {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // The .model file at `path` (a serialized sentencepiece ModelProto). Errors name the path.
  static SentencePieceTokenizer load(const std::string& path);
  // The bytes of a .model file; `origin` names them in errors.
  static SentencePieceTokenizer from_model_bytes(std::string bytes, const std::string& origin);
  // The wrapper JSON above, parsed; errors name `origin`.
  static SentencePieceTokenizer from_json(const nlohmann::json& json, const std::string& origin);
  // Whether a parsed JSON document is the wrapper (rather than a Hugging Face tokenizer.json).
  static bool is_wrapper_json(const nlohmann::json& json);

  std::string_view kind() const override { return "SentencePiece"; }
  // The pieces' ids, without bos or eos (spm_encode --output_format=id).
  std::vector<int32_t> encode(std::string_view text) const override;
  // skip_special: as spm_decode (control pieces such as <s> and </s> give nothing, unknown pieces " ⁇ ").
  // Otherwise control pieces are written as their text.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const override;
  int32_t vocab_size() const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::optional<std::string> id_to_token(int32_t id) const override;
  // The model's own pad, unk, bos and eos ids (its trainer's --pad_id ... flags; -1 when disabled).
  SpecialIds special_ids() const override;
  std::string to_json() const override;

  const std::string& model_bytes() const { return model_bytes_; }

 private:
  SentencePieceTokenizer(std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor,
                         std::string model_bytes);

  std::string decode_run(std::span<const int32_t> ids) const;

  std::shared_ptr<const sentencepiece::SentencePieceProcessor> processor_;
  std::string model_bytes_;
};

}  // namespace tfm::tokenize
