// libFuzzer target: arbitrary bytes as the text of a tokenizer.json.
//
// load_tokenizer_json() may reject the text, but only with a tfm::Error. A tokenizer it accepts must
// encode a fixed text into ids inside its vocabulary, decode those ids (both with and without the
// special tokens) without throwing, and survive to_json() -> load_tokenizer_json() unchanged: the same
// JSON again and the same ids. Anything else (another exception type, a sanitizer report, a crash, a
// hang) is a bug; the target aborts with a message so that libFuzzer saves the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenize/tokenizer.h"

namespace {

using tfm::tokenize::Tokenizer;

// What tokenizers treat specially: runs of spaces, a contraction, digits, punctuation, CRLF, accented
// letters, CJK, an emoji, and added tokens as Marian / mt-en-es spell them.
constexpr std::string_view kText =
    "Hello  world, it's 42!\r\n\xC2\xBFQu\xC3\xA9 tal? \xE6\x97\xA5\xE6\x9C\xAC "
    "\xF0\x9F\x91\x8B </s><pad>x<unk>";

[[noreturn]] void report_bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_tokenizer_json: BUG: %s\n", what.c_str());
  std::abort();
}

// Encodes kText, checks the ids and decodes them both ways.
std::vector<int32_t> encode_and_decode(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids = tokenizer.encode(kText);
  for (int32_t id : ids)
    if (id < 0 || id >= tokenizer.vocab_size())
      report_bug("encode() gave id " + std::to_string(id) + " outside the vocabulary of " +
                 std::to_string(tokenizer.vocab_size()));
  tokenizer.decode(ids, /*skip_special=*/true);
  tokenizer.decode(ids, /*skip_special=*/false);
  return ids;
}

void check_loaded(const Tokenizer& tokenizer) {
  const std::vector<int32_t> ids = encode_and_decode(tokenizer);
  const std::string json = tokenizer.to_json();
  std::unique_ptr<Tokenizer> reloaded;
  try {
    reloaded = tfm::tokenize::load_tokenizer_json(json, "to_json()");
  } catch (const tfm::Error& e) {
    report_bug(std::string("to_json() does not load again: ") + e.what() + "\n" + json);
  }
  if (reloaded->to_json() != json) report_bug("to_json() changes after a reload:\n" + json);
  if (encode_and_decode(*reloaded) != ids) report_bug("the reloaded tokenizer encodes differently:\n" + json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Tokenizer> tokenizer;
  try {
    tokenizer = tfm::tokenize::load_tokenizer_json(text, "fuzz");
  } catch (const tfm::Error&) {
    return 0;  // rejected with a message: the expected outcome for most inputs
  } catch (const std::exception& e) {
    report_bug(std::string("load_tokenizer_json threw a non-tfm exception: ") + e.what());
  }
  try {
    check_loaded(*tokenizer);
  } catch (const std::exception& e) {
    report_bug(std::string("a loaded tokenizer threw: ") + e.what());
  }
  return 0;
}
