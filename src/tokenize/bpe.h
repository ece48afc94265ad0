// Byte-level BPE (GPT-2, and Hugging Face tokenizers' BPE model behind the ByteLevel pre-tokenizer and
// decoder), producing the same ids as Hugging Face:
//  1. added tokens are cut out of the text first (see added_tokens.h);
//  2. each remaining piece gets a leading ' ' if add_prefix_space and it does not start with one, and is
//     split into GPT-2 pre-tokens (byte_level.h);
//  3. each pre-token's bytes become alphabet characters, and merges are applied as Hugging Face's
//     Word::merge_all does: repeatedly the adjacent pair of lowest merge rank, the leftmost first among
//     equal ranks. A byte whose character is not in the vocabulary becomes unk_token (consecutive ones
//     fused into one if fuse_unk), or is dropped when there is no unk_token, as Hugging Face does;
//  4. the TemplateProcessing post-processor, if any, adds its special tokens.
// decode() maps each token's characters back to bytes (an added token whose characters are not all in
// the alphabet contributes its own UTF-8) and replaces ill-formed UTF-8 by U+FFFD.
//
// encode() may be called from several threads at once: the pre-token cache is locked per shard.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenize/added_tokens.h"
#include "tokenize/pair_map.h"
#include "tokenize/template_processing.h"
#include "tokenize/tokenizer.h"

namespace tfm::tokenize {

// The options of Hugging Face's ByteLevel pre-tokenizer and decoder (trim_offsets only affects offsets,
// which tfm does not compute; it is kept for to_json()).
struct ByteLevelOptions {
  bool add_prefix_space = false;
  bool trim_offsets = true;
  bool use_regex = true;
};

struct BpeOptions {
  ByteLevelOptions pre_tokenizer;
  ByteLevelOptions decoder = {.add_prefix_space = true};
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a pre-token that is a whole vocabulary entry is that token, unmerged
  // Ids either name the vocabulary entry with the same text or continue the vocabulary's ids
  // (vocab.size(), vocab.size() + 1, ...), as Hugging Face numbers tokens added beyond the model.
  std::vector<AddedToken> added_tokens;
  std::optional<TemplateProcessing> post_processor;
  // Hugging Face's ByteLevel post-processor changes only offsets: kept for to_json(), ids unaffected.
  std::optional<ByteLevelOptions> byte_level_post_processor;
};

using Merge = std::pair<std::string, std::string>;

class BpeWordCache;

class BpeTokenizer final : public Tokenizer {
 public:
  // vocab[i] is the model's token with id i (spelled in the byte alphabet); merges[r] is the merge of
  // rank r. Throws tfm::Error for a duplicate token, a merge naming a token not in vocab or whose
  // result is not in vocab (naming the merge's index), a repeated merge, or a bad added token.
  BpeTokenizer(std::vector<std::string> vocab, std::vector<Merge> merges, BpeOptions options);
  BpeTokenizer(BpeTokenizer&&) noexcept;
  ~BpeTokenizer() override;

  // From a parsed tokenizer.json whose model.type is "BPE"; errors name `origin` and the field.
  static BpeTokenizer from_json(const nlohmann::json& json, const std::string& origin);
  // From GPT-2's encoder.json (or vocab.json) and vocab.bpe (or merges.txt): no added tokens, no
  // post-processor; "<|endoftext|>" in the text is ordinary text, as in the original GPT-2 encoder.
  static BpeTokenizer from_gpt2_files(const std::string& vocab_path, const std::string& merges_path);

  std::string_view kind() const override { return "BPE"; }
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const override;
  int32_t vocab_size() const override { return int32_t(tokens_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::optional<std::string> id_to_token(int32_t id) const override;
  SpecialIds special_ids() const override { return special_ids_; }
  std::string to_json() const override;

  const BpeOptions& options() const { return options_; }
  // The merges, by rank.
  std::vector<Merge> merges() const;

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct MergeResult {
    int32_t rank = -1;
    int32_t id = -1;
  };

  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const;
  void encode_pretoken(std::string_view bytes, std::vector<int32_t>& ids) const;
  void merge_pretoken(std::string_view bytes, std::vector<int32_t>& ids) const;
  bool is_special(int32_t id) const { return special_[size_t(id)]; }

  std::vector<std::string> tokens_;  // by id: the model's vocabulary, then added tokens beyond it
  int32_t model_vocab_size_ = 0;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids_;
  PairMap<MergeResult> merges_;
  int32_t merge_count_ = 0;
  std::array<int32_t, 256> byte_ids_{};  // the token of each byte's character, or -1
  int32_t unk_id_ = -1;
  std::vector<bool> special_;             // by id
  std::vector<std::string> token_bytes_;  // by id: what decode() writes
  BpeOptions options_;
  AddedTokenSplitter added_splitter_;
  SpecialIds special_ids_;
  std::unique_ptr<BpeWordCache> cache_;
};

}  // namespace tfm::tokenize
