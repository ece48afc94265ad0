#include "tokenize/bpe_trainer.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenize/byte_level.h"
#include "tokenize/pair_map.h"

namespace tfm::tokenize {

namespace {

// Distinct pre-tokens (raw bytes) and how often each occurs.
std::unordered_map<std::string, int64_t> count_words(std::span<const std::string> lines,
                                                     bool add_prefix_space) {
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::string_view> pieces;
  std::string prefixed;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (auto bad = find_invalid_utf8(line)) fail("line {}: invalid UTF-8 at byte offset {}", i + 1, *bad);
    if (add_prefix_space && !line.empty() && !line.starts_with(' ')) {
      prefixed.assign(1, ' ');
      prefixed.append(line);
      line = prefixed;
    }
    pieces.clear();
    split_gpt2_pretokens(line, pieces);
    for (std::string_view piece : pieces) ++counts[std::string(piece)];
  }
  return counts;
}

// A queue entry: a pair, its count when pushed, and the words to merge it in.
struct QueueEntry {
  int64_t count;
  uint64_t pair;
  std::vector<int32_t> words;
};

// Max-heap order: higher count first, then the smaller pair (packed (first, second) compares as the pair).
bool lower_priority(const QueueEntry& a, const QueueEntry& b) {
  return a.count != b.count ? a.count < b.count : a.pair > b.pair;
}

struct PairChange {
  uint64_t pair;
  int32_t delta;
};

// Merges every (first, second) in `word` into `merged`, left to right, recording how the counts of the
// neighbouring pairs change (Hugging Face's Word::merge; the merged pair itself is not recorded).
void merge_in_word(std::vector<int32_t>& word, int32_t first, int32_t second, int32_t merged,
                   std::vector<PairChange>& changes) {
  for (size_t i = 0; i < word.size(); ++i) {
    if (word[i] != first || i + 1 >= word.size() || word[i + 1] != second) continue;
    if (i > 0) {
      changes.push_back({pack_pair(word[i - 1], first), -1});
      changes.push_back({pack_pair(word[i - 1], merged), +1});
    }
    word[i] = merged;
    word.erase(word.begin() + std::ptrdiff_t(i) + 1);
    if (i + 1 < word.size()) {
      changes.push_back({pack_pair(second, word[i + 1]), -1});
      changes.push_back({pack_pair(merged, word[i + 1]), +1});
    }
  }
}

class Trainer {
 public:
  explicit Trainer(const BpeTrainOptions& options) : options_(options) {}

  BpeTokenizer train(std::span<const std::string> lines) {
    for (const std::string& token : options_.special_tokens) add_token(token);
    add_alphabet();
    load_words(count_words(lines, options_.add_prefix_space));
    count_pairs();
    while (int64_t(tokens_.size()) < options_.vocab_size && !queue_.empty()) {
      std::pop_heap(queue_.begin(), queue_.end(), lower_priority);
      QueueEntry top = std::move(queue_.back());
      queue_.pop_back();
      const int64_t current = pair_counts_[top.pair];
      if (top.count != current) {
        top.count = current;
        push(std::move(top));
        continue;
      }
      if (top.count < 1 || top.count < options_.min_frequency) break;
      merge(top);
    }
    return build();
  }

 private:
  int32_t add_token(const std::string& token) {
    auto [it, inserted] = ids_.try_emplace(token, int32_t(tokens_.size()));
    if (inserted) tokens_.push_back(token);
    return it->second;
  }

  // Every byte's character, in code point order (= the order of their UTF-8 spellings).
  void add_alphabet() {
    std::vector<std::string> alphabet;
    for (int byte = 0; byte < 256; ++byte) alphabet.emplace_back(byte_char(uint8_t(byte)));
    std::sort(alphabet.begin(), alphabet.end());
    for (const std::string& c : alphabet) add_token(c);
    for (int byte = 0; byte < 256; ++byte)
      byte_ids_[size_t(byte)] = ids_.at(std::string(byte_char(uint8_t(byte))));
  }

  void load_words(const std::unordered_map<std::string, int64_t>& counts) {
    words_.reserve(counts.size());
    word_counts_.reserve(counts.size());
    for (const auto& [bytes, count] : counts) {
      std::vector<int32_t>& word = words_.emplace_back();
      for (char byte : bytes) word.push_back(byte_ids_[uint8_t(byte)]);
      word_counts_.push_back(count);
    }
  }

  void count_pairs() {
    PairMap<std::vector<int32_t>> where;
    for (size_t w = 0; w < words_.size(); ++w) {
      const std::vector<int32_t>& word = words_[w];
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        const uint64_t pair = pack_pair(word[i], word[i + 1]);
        pair_counts_[pair] += word_counts_[w];
        std::vector<int32_t>& in = where[pair];
        if (in.empty() || in.back() != int32_t(w)) in.push_back(int32_t(w));
      }
    }
    where.for_each([&](uint64_t pair, const std::vector<int32_t>& in) {
      const int64_t count = *pair_counts_.find(pair);
      if (count > 0) queue_.push_back({count, pair, in});
    });
    std::make_heap(queue_.begin(), queue_.end(), lower_priority);
  }

  void push(QueueEntry entry) {
    queue_.push_back(std::move(entry));
    std::push_heap(queue_.begin(), queue_.end(), lower_priority);
  }

  void merge(const QueueEntry& top) {
    const int32_t first = pair_first(top.pair), second = pair_second(top.pair);
    const int32_t merged = add_token(tokens_[size_t(first)] + tokens_[size_t(second)]);
    merges_.push_back({first, second});
    gained_.clear();
    for (int32_t w : top.words) {
      changes_.clear();
      merge_in_word(words_[size_t(w)], first, second, merged, changes_);
      for (const PairChange& change : changes_) {
        pair_counts_[change.pair] += change.delta * word_counts_[size_t(w)];
        if (change.delta <= 0) continue;
        std::vector<int32_t>& in = gained_[change.pair];
        if (in.empty() || in.back() != w) in.push_back(w);
      }
    }
    for (auto& [pair, in] : gained_) {
      const int64_t count = pair_counts_[pair];
      if (count > 0) push({count, pair, std::move(in)});
    }
  }

  BpeTokenizer build() {
    // A pair merged twice keeps its later rank, as Hugging Face's merge map does.
    std::unordered_map<uint64_t, size_t> last_rank;
    for (size_t rank = 0; rank < merges_.size(); ++rank)
      last_rank[pack_pair(merges_[rank].first, merges_[rank].second)] = rank;
    std::vector<Merge> merges;
    for (size_t rank = 0; rank < merges_.size(); ++rank) {
      const auto [first, second] = merges_[rank];
      if (last_rank[pack_pair(first, second)] == rank)
        merges.push_back({tokens_[size_t(first)], tokens_[size_t(second)]});
    }
    BpeOptions options;
    options.pre_tokenizer.add_prefix_space = options_.add_prefix_space;
    for (const std::string& token : options_.special_tokens)
      if (std::none_of(options.added_tokens.begin(), options.added_tokens.end(),
                       [&](const AddedToken& added) { return added.content == token; }))
        options.added_tokens.push_back(
            {.content = token, .id = ids_.at(token), .special = true, .normalized = false});
    return BpeTokenizer(std::move(tokens_), std::move(merges), std::move(options));
  }

  const BpeTrainOptions& options_;
  std::vector<std::string> tokens_;  // by id
  std::unordered_map<std::string, int32_t> ids_;
  std::array<int32_t, 256> byte_ids_{};
  std::vector<std::vector<int32_t>> words_;
  std::vector<int64_t> word_counts_;
  PairMap<int64_t> pair_counts_;
  std::vector<QueueEntry> queue_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::vector<PairChange> changes_;
  std::unordered_map<uint64_t, std::vector<int32_t>> gained_;
};

}  // namespace

BpeTokenizer train_bpe(std::span<const std::string> lines, const BpeTrainOptions& options) {
  return Trainer(options).train(lines);
}

}  // namespace tfm::tokenize
