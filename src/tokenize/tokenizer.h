// Tokenizer: text <-> token ids. Word-level, byte-level BPE, WordPiece and SentencePiece tokenizers all
// implement this interface, and each reads and writes the Hugging Face tokenizer.json format.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tfm::tokenize {

// Ids of the special tokens; -1 where the tokenizer has no such token.
struct SpecialIds {
  int32_t pad = -1;
  int32_t unk = -1;
  int32_t bos = -1;  // start of sequence ("[SOS]", "<s>", ...)
  int32_t eos = -1;  // end of sequence ("[EOS]", "</s>", ...)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The model type as tokenizer.json names it: "WordLevel", "BPE", ...
  virtual std::string_view kind() const = 0;
  // Throws tfm::Error if `text` is not valid UTF-8.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Throws tfm::Error for an id outside [0, vocab_size()).
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special = true) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  virtual SpecialIds special_ids() const = 0;
  // The Hugging Face tokenizer.json text (what tokenizers.Tokenizer.from_str reads).
  virtual std::string to_json() const = 0;

  int32_t pad_id() const { return special_ids().pad; }
  int32_t unk_id() const { return special_ids().unk; }
  int32_t bos_id() const { return special_ids().bos; }
  int32_t eos_id() const { return special_ids().eos; }
  // 16 hex digits (64-bit FNV-1a of to_json()): equal for equal tokenizers, on every platform.
  std::string hash() const;
};

// Builds the tokenizer that a tokenizer.json text describes. `origin` (a path, usually) names it in errors.
// Understands model.type "WordLevel" and "BPE"; throws tfm::Error naming `origin` for anything else.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& json_text, const std::string& origin);

// The tokenizer stored at `path`: a tokenizer.json file, a directory holding one, or GPT-2's
// encoder.json / vocab.json beside its vocab.bpe / merges.txt. Throws tfm::Error naming `path` otherwise.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace tfm::tokenize
