#include "tokenize/bpe.h"

#include <algorithm>
#include <initializer_list>
#include <mutex>
#include <shared_mutex>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenize/byte_level.h"

namespace tfm::tokenize {

// The ids of pre-tokens already merged: pre-tokens recur a lot, and merging is the costly step. Sharded
// by hash, each shard behind a reader-writer lock, so that threads encoding at once rarely wait. Once a
// shard is full it keeps what it has (Hugging Face's cache does the same, with one lock).
class BpeWordCache {
 public:
  // Appends the cached ids of `word` to `ids`; false when `word` is not cached.
  bool append(std::string_view word, std::vector<int32_t>& ids) {
    Shard& shard = shard_of(word);
    std::shared_lock lock(shard.mutex);
    auto it = shard.words.find(word);
    if (it == shard.words.end()) return false;
    ids.insert(ids.end(), it->second.begin(), it->second.end());
    return true;
  }

  void insert(std::string_view word, std::span<const int32_t> ids) {
    if (word.size() > kMaxWordBytes) return;
    Shard& shard = shard_of(word);
    std::unique_lock lock(shard.mutex);
    if (shard.words.size() < kMaxWordsPerShard)
      shard.words.try_emplace(std::string(word), ids.begin(), ids.end());
  }

 private:
  static constexpr size_t kShards = 64;
  static constexpr size_t kMaxWordsPerShard = 4096;
  static constexpr size_t kMaxWordBytes = 256;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct alignas(64) Shard {
    std::shared_mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
  };

  Shard& shard_of(std::string_view word) { return shards_[(StringHash{}(word) >> 7) % kShards]; }

  std::array<Shard, kShards> shards_;
};

namespace {

std::string quoted_merge(const Merge& merge) { return fmt::format("'{} {}'", merge.first, merge.second); }

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> vocab, std::vector<Merge> merges, BpeOptions options)
    : tokens_(std::move(vocab)),
      model_vocab_size_(int32_t(tokens_.size())),
      options_(std::move(options)),
      added_splitter_(options_.added_tokens),
      cache_(std::make_unique<BpeWordCache>()) {
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (tokens_[id].empty()) fail("token {} is empty", id);
    if (auto bad = find_invalid_utf8(tokens_[id])) fail("token {} is not valid UTF-8 (byte {})", id, *bad);
    auto [it, inserted] = ids_.emplace(tokens_[id], int32_t(id));
    if (!inserted) fail("token '{}' has two ids, {} and {}", tokens_[id], it->second, id);
  }

  // Added tokens beyond the model's vocabulary take the next ids, in order.
  std::vector<AddedToken> beyond;
  for (const AddedToken& token : options_.added_tokens) {
    if (token.id < 0) fail("added token '{}' has a negative id {}", token.content, token.id);
    if (token.id < model_vocab_size_ && tokens_[size_t(token.id)] != token.content)
      fail("added token '{}' has id {}, which is the token '{}'", token.content, token.id,
           tokens_[size_t(token.id)]);
    if (token.id >= model_vocab_size_) beyond.push_back(token);
  }
  std::sort(beyond.begin(), beyond.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const AddedToken& token : beyond) {
    if (token.id != int32_t(tokens_.size()))
      fail("added token '{}' has id {}; expected {} (the ids after the vocabulary's)", token.content,
           token.id, tokens_.size());
    auto [it, inserted] = ids_.emplace(token.content, token.id);
    if (!inserted) fail("added token '{}' has two ids, {} and {}", token.content, it->second, token.id);
    tokens_.push_back(token.content);
  }
  special_.assign(tokens_.size(), false);
  for (const AddedToken& token : options_.added_tokens) special_[size_t(token.id)] = token.special;

  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& merge = merges[rank];
    auto model_id = [&](const std::string& token) {
      auto it = ids_.find(token);
      return it == ids_.end() || it->second >= model_vocab_size_ ? -1 : it->second;
    };
    const int32_t first = model_id(merge.first), second = model_id(merge.second);
    if (first < 0 || second < 0)
      fail("merge {} ({}): token '{}' is not in the vocabulary", rank, quoted_merge(merge),
           first < 0 ? merge.first : merge.second);
    const int32_t merged = model_id(merge.first + merge.second);
    if (merged < 0)
      fail("merge {} ({}): the merged token '{}' is not in the vocabulary", rank, quoted_merge(merge),
           merge.first + merge.second);
    MergeResult& result = merges_[pack_pair(first, second)];
    if (result.rank >= 0) fail("merge {} ({}) repeats merge {}", rank, quoted_merge(merge), result.rank);
    result = {int32_t(rank), merged};
  }
  merge_count_ = int32_t(merges.size());

  for (int byte = 0; byte < 256; ++byte) {
    auto it = ids_.find(byte_char(uint8_t(byte)));
    byte_ids_[size_t(byte)] = it == ids_.end() || it->second >= model_vocab_size_ ? -1 : it->second;
  }
  if (options_.unk_token) {
    auto unk = token_to_id(*options_.unk_token);
    if (!unk) fail("unk_token '{}' is not in the vocabulary", *options_.unk_token);
    unk_id_ = *unk;
  }
  token_bytes_.reserve(tokens_.size());
  for (const std::string& token : tokens_) token_bytes_.push_back(chars_to_bytes(token).value_or(token));

  auto first_of = [&](std::initializer_list<std::string_view> names) {
    for (std::string_view name : names)
      if (auto id = token_to_id(name)) return *id;
    return int32_t(-1);
  };
  special_ids_ = {.pad = first_of({"<pad>", "[PAD]"}),
                  .unk = unk_id_ >= 0 ? unk_id_ : first_of({"<unk>", "[UNK]"}),
                  .bos = first_of({"<s>", "[BOS]", "[SOS]", "<|endoftext|>"}),
                  .eos = first_of({"</s>", "[EOS]", "<|endoftext|>"})};
}

BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> BpeTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return std::nullopt;
  return tokens_[size_t(id)];
}

std::vector<Merge> BpeTokenizer::merges() const {
  std::vector<Merge> by_rank(static_cast<size_t>(merge_count_));
  merges_.for_each([&](uint64_t pair, const MergeResult& result) {
    by_rank[size_t(result.rank)] = {tokens_[size_t(pair_first(pair))], tokens_[size_t(pair_second(pair))]};
  });
  return by_rank;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  if (auto bad = find_invalid_utf8(text)) fail("cannot encode: invalid UTF-8 at byte offset {}", *bad);
  thread_local std::vector<TextSegment> segments;
  added_splitter_.split(text, segments);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const TextSegment& segment : segments) {
    if (segment.token_id >= 0)
      ids.push_back(segment.token_id);
    else
      encode_plain(segment.text, ids);
  }
  if (options_.post_processor) options_.post_processor->apply(ids);
  return ids;
}

void BpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  thread_local std::string prefixed;
  if (options_.pre_tokenizer.add_prefix_space && !text.starts_with(' ')) {
    prefixed.assign(1, ' ');
    prefixed += text;
    text = prefixed;
  }
  if (!options_.pre_tokenizer.use_regex) return encode_pretoken(text, ids);
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  split_gpt2_pretokens(text, pieces);
  for (std::string_view piece : pieces) encode_pretoken(piece, ids);
}

void BpeTokenizer::encode_pretoken(std::string_view bytes, std::vector<int32_t>& ids) const {
  if (options_.ignore_merges) {
    auto it = ids_.find(bytes_to_chars(bytes));
    if (it != ids_.end() && it->second < model_vocab_size_) return ids.push_back(it->second);
  }
  if (cache_->append(bytes, ids)) return;
  const size_t start = ids.size();
  merge_pretoken(bytes, ids);
  cache_->insert(bytes, std::span(ids).subspan(start));
}

// Hugging Face's Word::merge_all: a heap of (rank, position) candidates, the lowest rank first and the
// leftmost among equal ranks; a candidate is stale (skipped) when its left symbol was merged into its
// neighbour, or when the pair now at its position does not merge into the same token.
void BpeTokenizer::merge_pretoken(std::string_view bytes, std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id, prev, next;
    bool removed;
  };
  struct Candidate {
    int32_t rank, pos, merged_id;
  };
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  symbols.clear();
  heap.clear();

  bool unk_pending = false;  // an unknown byte whose unk symbol is not yet added (for fuse_unk)
  const auto add = [&](int32_t id) {
    const int32_t pos = int32_t(symbols.size());
    symbols.push_back({id, pos - 1, -1, false});
    if (pos > 0) symbols[size_t(pos - 1)].next = pos;
  };
  for (char byte : bytes) {
    const int32_t id = byte_ids_[uint8_t(byte)];
    if (id >= 0) {
      if (unk_pending) add(unk_id_);
      unk_pending = false;
      add(id);
    } else if (unk_id_ >= 0) {
      if (unk_pending && !options_.fuse_unk) add(unk_id_);
      unk_pending = true;
    }
  }
  if (unk_pending) add(unk_id_);

  const auto push_candidate = [&](int32_t pos) {
    const Symbol& left = symbols[size_t(pos)];
    if (const MergeResult* merge = merges_.find(left.id, symbols[size_t(left.next)].id)) {
      heap.push_back({merge->rank, pos, merge->id});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t pos = 0; pos + 1 < int32_t(symbols.size()); ++pos) push_candidate(pos);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[size_t(top.pos)];
    if (left.removed || left.next < 0) continue;
    Symbol& right = symbols[size_t(left.next)];
    const MergeResult* merge = merges_.find(left.id, right.id);
    if (!merge || merge->id != top.merged_id) continue;
    left.id = top.merged_id;
    right.removed = true;
    left.next = right.next;
    if (left.next >= 0) symbols[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0) push_candidate(left.prev);
    if (left.next >= 0) push_candidate(top.pos);
  }
  for (int32_t pos = symbols.empty() ? -1 : 0; pos >= 0; pos = symbols[size_t(pos)].next)
    ids.push_back(symbols[size_t(pos)].id);
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) fail("token id {} is outside the vocabulary [0, {})", id, vocab_size());
    if (skip_special && is_special(id)) continue;
    bytes += token_bytes_[size_t(id)];
  }
  return utf8_lossy(bytes);
}

}  // namespace tfm::tokenize
