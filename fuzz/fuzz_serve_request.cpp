// libFuzzer target: arbitrary bytes as the body of a tfm serve request (serve/api.h).
//
// parse_body() and each request parser may reject the bytes, but only with an ApiError carrying a 4xx
// status and an error body in OpenAI's shape; what they accept must hold values inside the documented
// ranges. Anything else (another exception, a sanitizer report, a crash, a hang) is a bug: the target
// aborts so that libFuzzer saves the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "serve/api.h"

namespace {

using namespace tfm::serve;

[[noreturn]] void report_bug(const std::string& what) {
  std::fprintf(stderr, "fuzz_serve_request: BUG: %s\n", what.c_str());
  std::abort();
}

void check_params(const SamplingParams& p) {
  if (p.max_tokens && *p.max_tokens < 1) report_bug("max_tokens below 1 accepted");
  if (!(p.temperature >= 0 && p.temperature <= 2)) report_bug("temperature out of range accepted");
  if (!(p.top_p > 0 && p.top_p <= 1)) report_bug("top_p out of range accepted");
  if (p.n < 1 || p.n > 16) report_bug("n out of range accepted");
  if (p.stop.size() > 4) report_bug("more than 4 stop sequences accepted");
  for (const std::string& s : p.stop)
    if (s.empty()) report_bug("an empty stop sequence accepted");
  if (!(p.repetition_penalty > 0)) report_bug("a repetition penalty <= 0 accepted");
}

void check_prompts(const std::vector<Prompt>& prompts) {
  if (prompts.empty()) report_bug("no prompt accepted");
  for (const Prompt& p : prompts)
    for (int64_t id : p.ids)
      if (id < 0) report_bug("a negative token id accepted");
}

// Runs one parser; an ApiError must be a 4xx with a well-formed body, any other exception is a bug.
template <typename Parse>
void run(Parse parse) {
  try {
    parse();
  } catch (const ApiError& e) {
    if (e.status() < 400 || e.status() >= 500)
      report_bug("an ApiError with status " + std::to_string(e.status()));
    const json body = e.body();
    if (!body["error"]["message"].is_string() || !body["error"]["type"].is_string())
      report_bug("an error body without message or type: " + dump(body));
    dump(body);  // must not throw, whatever bytes the message quotes
  } catch (const std::exception& e) {
    report_bug(std::string("an exception that is no ApiError: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  json body;
  try {
    body = parse_body(bytes);
  } catch (const ApiError& e) {
    if (e.status() != 400) report_bug("parse_body answered " + std::to_string(e.status()));
    return 0;
  } catch (const std::exception& e) {
    report_bug(std::string("parse_body threw an exception that is no ApiError: ") + e.what());
  }
  run([&] {
    CompletionRequest r = parse_completion(body);
    check_prompts(r.prompts), check_params(r.params);
  });
  run([&] {
    ChatRequest r = parse_chat(body);
    if (r.messages.empty()) report_bug("a chat without messages accepted");
    check_params(r.params);
  });
  run([&] { check_prompts(parse_embedding(body).inputs); });
  run([&] {
    TranslateRequest r = parse_translate(body);
    if (r.q.empty() && !r.q_is_array) report_bug("a translation without q accepted");
  });
  run([&] { parse_tokenize(body); });
  run([&] { parse_detokenize(body); });
  return 0;
}
