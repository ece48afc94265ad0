// The requests tfm serve accepts, parsed from JSON and checked field by field, and the errors it answers,
// in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. Field names and defaults follow
// OpenAI's API reference (completions, chat completions, embeddings), llama-server's (/tokenize,
// /detokenize) and LibreTranslate's (/translate). Everything here is pure: no model, no I/O (the fuzz
// target fuzz/fuzz_serve_request.cpp runs it on arbitrary bytes).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "serve/chat_template.h"

namespace tfm::serve {

using json = nlohmann::json;

// An error answered with HTTP `status` and OpenAI's error object.
class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {},
           std::string type = {});
  int status() const { return status_; }
  json body() const;  // {"error": {...}}

 private:
  int status_;
  std::string type_, param_, code_;
};

// The body as a JSON object: 400 for malformed JSON (with the byte offset), invalid UTF-8, or a
// non-object.
json parse_body(std::string_view body);

// A prompt or input: text, or token ids (OpenAI accepts both).
struct Prompt {
  std::string text;
  std::vector<int64_t> ids;
  bool is_ids = false;
};

// The decoding fields of completions and chat completions.
struct SamplingParams {
  std::optional<int64_t> max_tokens;  // absent: completions 16, chat the rest of the context
  float temperature = 1.0f;           // 0: greedy
  float top_p = 1.0f;
  int64_t top_k = 0;  // 0: off (llama-server's extension)
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // at most 4, none empty
  int64_t n = 1;
  float presence_penalty = 0, frequency_penalty = 0;  // OpenAI's, in [-2, 2]
  float repetition_penalty = 1.0f;                    // CTRL's (Hugging Face), > 0
  bool stream = false, include_usage = false;
  std::optional<int64_t> logprobs;  // completions: top alternatives per token, 0..5; chat: top_logprobs
  bool echo = false;                // completions: the prompt before the completion
  // Extensions of llama-server and vLLM: generate past EOS (fixed lengths, for benchmarks), and return each
  // choice's token ids ("tokens").
  bool ignore_eos = false, return_tokens = false;
};

struct CompletionRequest {
  std::string model;
  std::vector<Prompt> prompts;  // one choice set of n per prompt
  SamplingParams params;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  SamplingParams params;
};

struct EmbeddingRequest {
  std::string model;
  std::vector<Prompt> inputs;
  bool base64 = false;  // encoding_format "base64": little-endian float32 bytes, base64
};

struct TranslateRequest {
  std::string model;
  std::vector<std::string> q;
  bool q_is_array = false;
  std::string source, target, format = "text";
  int64_t alternatives = 0;
  std::optional<int64_t> beams;
};

struct TokenizeRequest {
  std::string model;
  std::string content;
  bool with_pieces = false;
};

struct DetokenizeRequest {
  std::string model;
  std::vector<int64_t> tokens;
};

// Each throws ApiError(400) naming the field (its `param`) when a field has the wrong type or range.
CompletionRequest parse_completion(const json& body);
ChatRequest parse_chat(const json& body);
EmbeddingRequest parse_embedding(const json& body);
TranslateRequest parse_translate(const json& body);
TokenizeRequest parse_tokenize(const json& body);
DetokenizeRequest parse_detokenize(const json& body);

// JSON text of `value`; strings that are not valid UTF-8 (a token cut inside a character) get U+FFFD.
std::string dump(const json& value);

}  // namespace tfm::serve
