// BERT's WordPiece tokenizer, as Hugging Face tokenizers runs a tokenizer.json with the BertNormalizer,
// the BertPreTokenizer, the WordPiece model and the WordPiece decoder:
//  - special tokens ("[CLS]", ...) are matched verbatim in the raw text first (leftmost, then longest);
//  - the rest is normalized (bert_normalizer.h) and split into words (bert_pre_tokenizer.h);
//  - each word is cut greedily into the longest vocabulary pieces from its left, every piece after the first
//    spelled with the continuing-subword prefix ("##"); the whole word becomes the unk token when some rest
//    of it has no piece, or when it has more than max_input_chars_per_word characters;
//  - the post-processor's template (e.g. "[CLS] $A [SEP]") puts special tokens around the ids.
// decode() drops the prefix of continuing pieces, joins the others with spaces and applies HF's cleanup.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/bert_normalizer.h"
#include "tokenize/vocab_tokenizer.h"

namespace tfm::tokenize {

// HF's WordPiece decoder.
struct WordPieceDecoderOptions {
  std::string prefix = "##";  // removed from a continuing piece; other pieces (but the first) get a space
  // Per piece, remove the space before . ? ! , and before the contractions 'm n't 's 've 're (HF's cleanup).
  bool cleanup = true;
};

struct WordPieceOptions {
  BertNormalizerOptions normalizer;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  int64_t max_input_chars_per_word = 100;
  // The special tokens: matched verbatim in the text, dropped by decode(ids, skip_special = true). Those
  // that are not in the vocabulary are ignored.
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  // What encode() puts before and after the text's ids (the post-processor); e.g. {"[CLS]"} and {"[SEP]"}
  // for BERT's "[CLS] $A [SEP]". Each must be a special token.
  std::vector<std::string> template_prefix;
  std::vector<std::string> template_suffix;
  // nullopt: no decoder, decode() joins the tokens with spaces (as HF does without one).
  std::optional<WordPieceDecoderOptions> decoder = WordPieceDecoderOptions{};
};

class WordPieceTokenizer final : public VocabTokenizer {
 public:
  // vocab[i] is the token with id i. Throws tfm::Error for a duplicate or empty token, a token that is not
  // UTF-8, or an unk or template token missing from the vocabulary.
  explicit WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options = {});

  // A BERT vocab.txt: one token per line, the id is the line's index; trailing white space (a "\r") is
  // not part of the token, as in HF. Errors name the file and line (an empty line, a duplicate token).
  static WordPieceTokenizer from_vocab_file(const std::string& path, WordPieceOptions options = {});
  // From a parsed tokenizer.json whose model.type is "WordPiece"; errors name `origin`.
  static WordPieceTokenizer from_json(const nlohmann::json& json, const std::string& origin);

  std::string_view kind() const override { return "WordPiece"; }
  // HF's encode(text): with the template's special tokens.
  std::vector<int32_t> encode(std::string_view text) const override { return encode(text, true); }
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // The WordPiece model alone on one word (already normalized and pre-tokenized); appends to `ids`.
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const override;
  // special_ids(): pad "[PAD]", unk, bos "[CLS]", eos "[SEP]" (-1 where absent).
  std::string to_json() const override;

  const WordPieceOptions& options() const { return options_; }

 private:
  int32_t required_id(std::string_view token, std::string_view role) const;
  // The BertNormalizer, the BertPreTokenizer, then encode_word on each word.
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const override;

  WordPieceOptions options_;
  int32_t unk_id_ = -1;
  std::vector<int32_t> template_prefix_, template_suffix_;
  // The tokenizer.json post_processor this tokenizer was read from, written back as it was; "" when the
  // template came from WordPieceOptions.
  std::string post_processor_json_;
};

}  // namespace tfm::tokenize
