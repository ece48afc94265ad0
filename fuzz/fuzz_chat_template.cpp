// libFuzzer target: arbitrary bytes as the text of a chat template.
//
// ChatTemplate::parse() may reject the text, but only with a tfm::Error. A template it accepts renders a
// fixed three-message conversation with add_generation_prompt off and on; rendering may fail (an undefined
// variable, raise_exception, a limit), but again only with a tfm::Error. Anything else (another exception
// type, a sanitizer report, a crash, a hang) is a bug; the target aborts with a message so that libFuzzer
// saves the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "serve/chat_template.h"

namespace {

using tfm::serve::ChatMessage;
using tfm::serve::ChatTemplate;

[[noreturn]] void report_bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_chat_template: BUG: %s\n", what.c_str());
  std::abort();
}

// A system prompt, a user turn with whitespace, quotes and non-ASCII text, and an assistant turn.
const std::vector<ChatMessage> kMessages = {
    {"system", "You are a helpful assistant."},
    {"user", "  Hello, it's \"me\"\n\xC2\xBFQu\xC3\xA9 tal? \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x91\x8B  "},
    {"assistant", "Hi!"}};

void render_both_ways(const ChatTemplate& t) {
  for (const bool add_generation_prompt : {false, true}) {
    try {
      t.render(kMessages, add_generation_prompt, "<s>", "</s>");
    } catch (const tfm::Error&) {
      // rejected with a message
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<ChatTemplate> t;
  try {
    t = ChatTemplate::parse(text);
  } catch (const tfm::Error&) {
    return 0;  // a parse error with a message: the expected outcome for most inputs
  } catch (const std::exception& e) {
    report_bug(std::string("parse threw a non-tfm exception: ") + e.what());
  }
  try {
    render_both_ways(*t);
  } catch (const std::exception& e) {
    report_bug(std::string("render threw a non-tfm exception: ") + e.what());
  }
  return 0;
}
