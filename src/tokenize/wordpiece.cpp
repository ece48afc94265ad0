#include "tokenize/wordpiece.h"

#include <unicode/utf8.h>

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/utf8.h"
#include "io/atomic_file.h"
#include "tokenize/bert_chars.h"
#include "tokenize/bert_pre_tokenizer.h"

namespace tfm::tokenize {

namespace {

int64_t count_code_points(std::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char byte) { return !U8_IS_TRAIL(uint8_t(byte)); });
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
}

// HF's WordPiece decoder cleanup (decoders/wordpiece.rs), applied to each piece on its own, after its
// separating space was added: so it can only join a piece to the one before.
void cleanup(std::string& piece) {
  constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(piece, from, to);
}

// Rust's str::trim_end: without the trailing White_Space characters. `s` is valid UTF-8.
std::string_view trim_end_whitespace(std::string_view s) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
  int32_t end = int32_t(s.size());
  while (end > 0) {
    int32_t before = end;
    UChar32 c;
    U8_PREV(bytes, 0, before, c);
    if (!is_rust_whitespace(c)) break;
    end = before;
  }
  return s.substr(0, size_t(end));
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options)
    : VocabTokenizer(std::move(vocab)), options_(std::move(options)) {
  if (options_.max_input_chars_per_word < 0)
    fail("max_input_chars_per_word is {}, must be >= 0", options_.max_input_chars_per_word);
  unk_id_ = required_id(options_.unk_token, "unk token");
  std::vector<int32_t> special_ids;
  for (const std::string& token : options_.special_tokens)
    if (auto id = token_to_id(token)) special_ids.push_back(*id);
  set_special_tokens(special_ids);
  for (const std::string& token : options_.template_prefix)
    template_prefix_.push_back(required_id(token, "template token"));
  for (const std::string& token : options_.template_suffix)
    template_suffix_.push_back(required_id(token, "template token"));
  for (int32_t id : template_prefix_)
    if (!is_special(id)) fail("template token '{}' is not a special token", vocab_[size_t(id)]);
  for (int32_t id : template_suffix_)
    if (!is_special(id)) fail("template token '{}' is not a special token", vocab_[size_t(id)]);
  special_ids_ = {.pad = first_id_of({"[PAD]", "<pad>"}),
                  .unk = unk_id_,
                  .bos = first_id_of({"[CLS]", "<s>"}),
                  .eos = first_id_of({"[SEP]", "</s>"})};
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path, WordPieceOptions options) {
  const std::string text = io::read_file(path);
  std::vector<std::string> vocab;
  std::unordered_map<std::string_view, size_t> line_of;  // token -> its 1-based line
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view token(text.data() + start, end - start);
    const size_t line = vocab.size() + 1;
    if (auto bad = find_invalid_utf8(token))
      fail("{}:{}: invalid UTF-8 at byte {} of the line", path, line, *bad);
    token = trim_end_whitespace(token);  // as HF reads the file (a "\r" before the "\n" goes too)
    if (token.empty()) fail("{}:{}: empty line (each line must hold one token)", path, line);
    auto [it, inserted] = line_of.emplace(token, line);
    if (!inserted) fail("{}:{}: token '{}' already on line {}", path, line, token, it->second);
    vocab.emplace_back(token);
    start = end + 1;
  }
  return with_context(path, [&] { return WordPieceTokenizer(std::move(vocab), std::move(options)); });
}

int32_t WordPieceTokenizer::required_id(std::string_view token, std::string_view role) const {
  auto id = token_to_id(token);
  if (!id) fail("{} '{}' is not in the vocabulary", role, token);
  return *id;
}

void WordPieceTokenizer::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (count_code_points(word) > options_.max_input_chars_per_word) {
    ids.push_back(unk_id_);
    return;
  }
  const size_t first_piece = ids.size();
  std::string candidate;  // the prefix (after the first piece) and word[start, end)
  for (size_t start = 0; start < word.size();) {
    const std::string_view prefix = start > 0 ? options_.continuing_subword_prefix : std::string_view();
    // The longest piece word[start, end) in the vocabulary: shrink end one character at a time.
    size_t end = word.size();
    std::optional<int32_t> piece;
    while (end > start) {
      candidate.assign(prefix).append(word.substr(start, end - start));
      if ((piece = token_to_id(candidate))) break;
      do --end;
      while (U8_IS_TRAIL(uint8_t(word[end])));  // start is a character boundary, so this stops there
    }
    if (!piece) {  // no piece starts here: the whole word is unknown
      ids.resize(first_piece);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(*piece);
    start = end;
  }
}

void WordPieceTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  const std::string normalized = bert_normalize(text, options_.normalizer);
  for (std::string_view word : bert_pre_tokenize(normalized)) encode_word(word, ids);
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = template_prefix_;
  encode_with_special_tokens(text, ids);
  if (add_special_tokens) ids.insert(ids.end(), template_suffix_.begin(), template_suffix_.end());
  return ids;
}

std::string WordPieceTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string text;
  bool first = true;
  for (std::string_view token : tokens_to_decode(ids, skip_special)) {
    std::string piece(token);
    if (!options_.decoder) {
      if (!first) text += ' ';
      text += piece;
    } else {
      // HF's WordPiece decoder: the first piece is kept as it is, even with the prefix.
      if (!first)
        piece = piece.starts_with(options_.decoder->prefix) ? piece.substr(options_.decoder->prefix.size())
                                                            : " " + piece;
      if (options_.decoder->cleanup) cleanup(piece);
      text += piece;
    }
    first = false;
  }
  return text;
}

}  // namespace tfm::tokenize
