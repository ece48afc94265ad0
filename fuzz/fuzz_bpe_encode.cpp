// libFuzzer target: arbitrary bytes as the text given to a byte-level BPE tokenizer's encode().
//
// The tokenizer is fuzz/corpus/mt-en-es-small.tokenizer.json (mt-en-es cut to 600 merges, see
// make_small_tokenizer.py), or the tokenizer.json that $TFM_FUZZ_TOKENIZER names. The properties:
//  - ill-formed UTF-8 (judged by this file's own validator, Unicode's table 3-7) is rejected with a
//    tfm::Error, and valid UTF-8 always encodes;
//  - encode(x) is the same on a second call (the pre-token cache changes nothing);
//  - decode(encode(x), skip_special = false) == P + x + S exactly, where P and S are the texts of the
//    post-processor's tokens before and after the sequence ("" and "</s>" for mt-en-es's "$A </s>").
//    This holds for every valid x: every byte's character is in the vocabulary, and an added token
//    cut out of x decodes to its own text;
//  - decode(encode(x)) (skip_special = true) == P' + x + S' (P', S' without the special tokens: "" and
//    "" for mt-en-es) only when x contains no added token: an added token in x ("</s>", "<pad>",
//    "<unk>") is special, so decode drops it like the post-processor's "</s>";
//  - for such x, encode(x) is P's ids + a naive BPE of each GPT-2 pre-token + S's ids, the naive BPE
//    repeatedly merging the leftmost adjacent pair of lowest rank (Hugging Face's Word::merge_all).
// The tokenizer must have all 256 byte characters and no prefix space (add_prefix_space = false);
// otherwise x does not come back and the target stops at start-up with a message.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tokenize/bpe.h"
#include "tokenize/byte_level.h"

namespace {

using tfm::tokenize::BpeTokenizer;

[[noreturn]] void report_bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_bpe_encode: BUG: %s\n", what.c_str());
  std::abort();
}

[[noreturn]] void unusable(const std::string& what) {
  std::fprintf(stderr, "fuzz_bpe_encode: %s\n", what.c_str());
  std::exit(2);
}

// Well-formed UTF-8 as Unicode 15 table 3-7 lists it (no overlong forms, surrogates or values past
// U+10FFFF), written out here so that it does not share code with the library's validator.
bool is_valid_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const size_t size = text.size();
  for (size_t i = 0; i < size;) {
    const uint8_t lead = bytes[i];
    size_t length = 0;
    uint8_t second_min = 0x80, second_max = 0xBF;
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_min = 0xA0;
      if (lead == 0xED) second_max = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_min = 0x90;
      if (lead == 0xF4) second_max = 0x8F;
    } else {
      return false;
    }
    if (i + length > size) return false;
    for (size_t k = 1; k < length; ++k) {
      const uint8_t low = k == 1 ? second_min : 0x80, high = k == 1 ? second_max : 0xBF;
      if (bytes[i + k] < low || bytes[i + k] > high) return false;
    }
    i += length;
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) unusable(path + ": cannot open (set TFM_FUZZ_TOKENIZER to a tokenizer.json)");
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// The tokenizer and what the properties need from it, computed once.
struct Subject {
  BpeTokenizer tokenizer;
  std::map<std::pair<std::string, std::string>, size_t> merge_rank;
  std::vector<std::string> added_texts;
  std::vector<int32_t> ids_before, ids_after;  // the post-processor's ids around the sequence
  std::string text_before, text_after;         // their text, special tokens included
  std::string kept_before, kept_after;         // their text without the special tokens

  explicit Subject(BpeTokenizer bpe) : tokenizer(std::move(bpe)) {
    const tfm::tokenize::BpeOptions& options = tokenizer.options();
    if (options.pre_tokenizer.add_prefix_space)
      unusable("the tokenizer adds a prefix space: x cannot come back");
    for (int byte = 0; byte < 256; ++byte)
      if (!tokenizer.token_to_id(tfm::tokenize::byte_char(uint8_t(byte))))
        unusable("byte " + std::to_string(byte) + " has no token: x cannot come back");
    const std::vector<tfm::tokenize::Merge> merges = tokenizer.merges();
    for (size_t rank = 0; rank < merges.size(); ++rank) merge_rank.emplace(merges[rank], rank);
    for (const auto& token : options.added_tokens) added_texts.push_back(token.content);

    // "\x01" is one pre-token of one byte: the ids around its token are the post-processor's.
    const int32_t marker = *tokenizer.token_to_id(tfm::tokenize::byte_char(1));
    const std::vector<int32_t> ids = tokenizer.encode("\x01");
    size_t at = 0;
    while (at < ids.size() && ids[at] != marker) ++at;
    if (at == ids.size()) unusable("encode(\"\\x01\") lacks the token of byte 1");
    ids_before.assign(ids.begin(), ids.begin() + ptrdiff_t(at));
    ids_after.assign(ids.begin() + ptrdiff_t(at) + 1, ids.end());
    text_before = tokenizer.decode(ids_before, false);
    text_after = tokenizer.decode(ids_after, false);
    kept_before = tokenizer.decode(ids_before, true);
    kept_after = tokenizer.decode(ids_after, true);
  }

  bool contains_added_token(std::string_view text) const {
    for (const std::string& added : added_texts)
      if (text.find(added) != std::string_view::npos) return true;
    return false;
  }

  // BPE by definition: merge the leftmost adjacent pair of lowest rank until no pair merges.
  void append_naive_bpe(std::string_view pretoken, std::vector<int32_t>& ids) const {
    std::vector<std::string> symbols;
    for (char byte : pretoken) symbols.emplace_back(tfm::tokenize::byte_char(uint8_t(byte)));
    if (tokenizer.options().ignore_merges) {
      std::string whole;
      for (const std::string& symbol : symbols) whole += symbol;
      if (auto id = tokenizer.token_to_id(whole)) return ids.push_back(*id);
    }
    for (;;) {
      std::optional<size_t> best_rank, best_at;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = merge_rank.find({symbols[i], symbols[i + 1]});
        if (it != merge_rank.end() && (!best_rank || it->second < *best_rank)) {
          best_rank = it->second;
          best_at = i;
        }
      }
      if (!best_at) break;
      symbols[*best_at] += symbols[*best_at + 1];
      symbols.erase(symbols.begin() + ptrdiff_t(*best_at) + 1);
    }
    for (const std::string& symbol : symbols) ids.push_back(*tokenizer.token_to_id(symbol));
  }

  std::vector<int32_t> naive_encode(std::string_view text) const {
    std::vector<int32_t> ids = ids_before;
    if (!text.empty()) {
      if (tokenizer.options().pre_tokenizer.use_regex) {
        for (std::string_view pretoken : tfm::tokenize::split_gpt2_pretokens(text))
          append_naive_bpe(pretoken, ids);
      } else {
        append_naive_bpe(text, ids);
      }
    }
    ids.insert(ids.end(), ids_after.begin(), ids_after.end());
    return ids;
  }
};

const Subject& subject() {
  static const Subject instance = [] {
    const char* from_env = std::getenv("TFM_FUZZ_TOKENIZER");
    const std::string path = from_env ? from_env : TFM_FUZZ_CORPUS_DIR "/mt-en-es-small.tokenizer.json";
    try {
      return Subject(BpeTokenizer::from_json(nlohmann::json::parse(read_file(path)), path));
    } catch (const std::exception& e) {
      unusable(std::string("cannot load the tokenizer: ") + e.what());
    }
  }();
  return instance;
}

void check_valid(const Subject& s, std::string_view text) {
  const std::vector<int32_t> ids = s.tokenizer.encode(text);
  if (s.tokenizer.encode(text) != ids) report_bug("a second encode() gives other ids");
  if (s.tokenizer.decode(ids, false) != s.text_before + std::string(text) + s.text_after)
    report_bug("decode(encode(x), skip_special = false) is not the post-processor's text around x");
  if (s.contains_added_token(text)) return;
  if (s.tokenizer.decode(ids, true) != s.kept_before + std::string(text) + s.kept_after)
    report_bug("decode(encode(x)) is not x (x has no added token)");
  if (s.naive_encode(text) != ids) report_bug("encode(x) differs from the naive BPE of x");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Subject& s = subject();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid = is_valid_utf8(text);
  try {
    if (valid) {
      check_valid(s, text);
    } else {
      s.tokenizer.encode(text);
      report_bug("encode() accepted ill-formed UTF-8");
    }
  } catch (const tfm::Error& e) {
    if (valid) report_bug(std::string("encode() rejected valid UTF-8: ") + e.what());
  } catch (const std::exception& e) {
    report_bug(std::string("encode() threw a non-tfm exception: ") + e.what());
  }
  return 0;
}
