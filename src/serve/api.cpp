#include "serve/api.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/utf8.h"

namespace tfm::serve {

namespace {

std::string default_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param, "invalid_value");
}

// The JSON type of `v` as OpenAI's errors name it.
std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void wrong_type(const std::string& param, const json& v, const char* expected) {
  throw ApiError(400, fmt::format("'{}' must be {}, not {}", param, expected, type_name(v)), param,
                 "invalid_type");
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& body, const char* name, std::string fallback = {}) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_string()) wrong_type(name, *v, "a string");
  return v->get<std::string>();
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) wrong_type(name, *v, "a boolean");
  return v->get<bool>();
}

std::optional<int64_t> get_int(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_unsigned()) {  // nlohmann's type for every integer >= 0
    if (v->get<uint64_t>() > uint64_t(hi))
      bad(name, fmt::format("'{}' is {}; it must be between {} and {}", name, v->dump(), lo, hi));
    x = int64_t(v->get<uint64_t>());
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
             std::fabs(v->get<double>()) < 9e15) {
    x = int64_t(v->get<double>());
  } else {
    wrong_type(name, *v, "an integer");
  }
  if (x < lo || x > hi) bad(name, fmt::format("'{}' is {}; it must be between {} and {}", name, x, lo, hi));
  return x;
}

float get_float(const json& body, const char* name, float fallback, double lo, double hi,
                bool open_lo = false) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) wrong_type(name, *v, "a number");
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi) || (open_lo && x == lo))
    bad(name, fmt::format("'{}' is {}; it must be {} {} and at most {}", name, x,
                          open_lo ? "above" : "at least", lo, hi));
  return float(x);
}

// A token id list: integers >= 0 (the model's vocabulary is checked later).
std::vector<int64_t> token_ids(const json& v, const std::string& param) {
  std::vector<int64_t> ids;
  for (const json& t : v) {
    if (!t.is_number_integer() && !t.is_number_unsigned()) wrong_type(param, t, "an array of token ids");
    if (!t.is_number_unsigned() || t.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max()))
      bad(param, fmt::format("'{}' holds the token id {}, which is no token", param, t.dump()));
    ids.push_back(t.get<int64_t>());
  }
  return ids;
}

// A string, or an array of strings, as a list.
std::vector<std::string> strings(const json& v, const std::string& param) {
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) wrong_type(param, v, "a string or an array of strings");
  std::vector<std::string> out;
  for (const json& s : v) {
    if (!s.is_string()) wrong_type(param, s, "a string or an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

bool all_integers(const json& v) {
  for (const json& t : v)
    if (!t.is_number_integer() && !t.is_number_unsigned()) return false;
  return true;
}

Prompt text_prompt(std::string text) {
  Prompt p;
  p.text = std::move(text);
  return p;
}

Prompt id_prompt(std::vector<int64_t> ids) {
  Prompt p;
  p.ids = std::move(ids), p.is_ids = true;
  return p;
}

// OpenAI's prompt / input: a string, an array of strings, an array of token ids, an array of such arrays.
std::vector<Prompt> prompts(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) bad(name, fmt::format("'{}' is required", name));
  std::vector<Prompt> out;
  if (v->is_string()) return {text_prompt(v->get<std::string>())};
  if (!v->is_array()) wrong_type(name, *v, "a string or an array");
  if (v->empty()) bad(name, fmt::format("'{}' is an empty array", name));
  if (all_integers(*v)) return {id_prompt(token_ids(*v, name))};
  for (const json& p : *v) {
    if (p.is_string())
      out.push_back(text_prompt(p.get<std::string>()));
    else if (p.is_array() && all_integers(p))
      out.push_back(id_prompt(token_ids(p, name)));
    else
      wrong_type(name, p, "a string or an array of token ids in the array");
  }
  return out;
}

SamplingParams sampling(const json& body, bool chat) {
  SamplingParams p;
  const int64_t kMaxTokens = int64_t(1) << 30;
  p.max_tokens = get_int(body, "max_tokens", 1, kMaxTokens);
  if (chat)
    if (auto m = get_int(body, "max_completion_tokens", 1, kMaxTokens)) p.max_tokens = m;
  p.temperature = get_float(body, "temperature", 1.0f, 0.0, 2.0);
  p.top_p = get_float(body, "top_p", 1.0f, 0.0, 1.0, /*open_lo=*/true);
  p.top_k = get_int(body, "top_k", 0, int64_t(1) << 31).value_or(0);
  if (const json* s = field(body, "seed")) {
    if (!s->is_number_integer() && !s->is_number_unsigned()) wrong_type("seed", *s, "an integer");
    p.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  if (const json* s = field(body, "stop")) {
    p.stop = strings(*s, "stop");
    if (p.stop.size() > 4) bad("stop", fmt::format("'stop' has {} sequences; at most 4", p.stop.size()));
    for (const std::string& x : p.stop)
      if (x.empty()) bad("stop", "'stop' holds an empty string");
  }
  p.n = get_int(body, "n", 1, 16).value_or(1);
  p.presence_penalty = get_float(body, "presence_penalty", 0.0f, -2.0, 2.0);
  p.frequency_penalty = get_float(body, "frequency_penalty", 0.0f, -2.0, 2.0);
  p.repetition_penalty = get_float(body, "repetition_penalty", 1.0f, 0.0, 100.0, /*open_lo=*/true);
  p.stream = get_bool(body, "stream", false);
  if (const json* o = field(body, "stream_options")) {
    if (!o->is_object()) wrong_type("stream_options", *o, "an object");
    p.include_usage = get_bool(*o, "include_usage", false);
  }
  p.ignore_eos = get_bool(body, "ignore_eos", false);
  p.return_tokens = get_bool(body, "return_tokens", false);
  if (chat) {
    if (get_bool(body, "logprobs", false)) p.logprobs = get_int(body, "top_logprobs", 0, 20).value_or(0);
  } else {
    p.logprobs = get_int(body, "logprobs", 0, 5);
    p.echo = get_bool(body, "echo", false);
  }
  return p;
}

void require_object(const json& body) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
}

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code,
                   std::string type)
    : Error(message),
      status_(status),
      type_(type.empty() ? default_type(status) : std::move(type)),
      param_(std::move(param)),
      code_(std::move(code)) {}

json ApiError::body() const {
  return {{"error",
           {{"message", what()},
            {"type", type_},
            {"param", param_.empty() ? json(nullptr) : json(param_)},
            {"code", code_.empty() ? json(nullptr) : json(code_)}}}};
}

json parse_body(std::string_view body) {
  if (auto bad_byte = find_invalid_utf8(body))
    throw ApiError(400, fmt::format("the request body is not valid UTF-8 (byte offset {})", *bad_byte), "",
                   "invalid_utf8");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // a syntax error, or a number out of double's range
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()), "", "invalid_json");
  }
  require_object(j);
  return j;
}

CompletionRequest parse_completion(const json& body) {
  require_object(body);
  CompletionRequest r;
  r.model = get_string(body, "model");
  r.prompts = prompts(body, "prompt");
  r.params = sampling(body, /*chat=*/false);
  return r;
}

ChatRequest parse_chat(const json& body) {
  require_object(body);
  ChatRequest r;
  r.model = get_string(body, "model");
  const json* m = field(body, "messages");
  if (!m) bad("messages", "'messages' is required");
  if (!m->is_array()) wrong_type("messages", *m, "an array");
  if (m->empty()) bad("messages", "'messages' is an empty array");
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!msg.is_object()) wrong_type(param, msg, "an object");
    ChatMessage out;
    if (const json* role = field(msg, "role"); role && !role->is_string())
      wrong_type(param + ".role", *role, "a string");
    out.role = get_string(msg, "role");
    if (out.role.empty()) bad(param + ".role", fmt::format("'{}.role' is required", param));
    static const std::vector<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
    if (std::find(roles.begin(), roles.end(), out.role) == roles.end())
      bad(param + ".role",
          fmt::format("'{}.role' is '{}'; it must be one of system, developer, user, assistant, "
                      "tool",
                      param, out.role));
    if (!field(msg, "content")) bad(param + ".content", fmt::format("'{}.content' is required", param));
    // Content: a string, or an array of parts of which the text parts are joined.
    if (const json* c = field(msg, "content")) {
      if (c->is_string()) {
        out.content = c->get<std::string>();
      } else if (c->is_array()) {
        for (const json& part : *c) {
          if (!part.is_object() || get_string(part, "type") != "text")
            bad(param + ".content", "only text content parts are supported");
          out.content += get_string(part, "text");
        }
      } else {
        wrong_type(param + ".content", *c, "a string or an array of content parts");
      }
    }
    r.messages.push_back(std::move(out));
  }
  r.params = sampling(body, /*chat=*/true);
  return r;
}

EmbeddingRequest parse_embedding(const json& body) {
  require_object(body);
  EmbeddingRequest r;
  r.model = get_string(body, "model");
  r.inputs = prompts(body, "input");
  const std::string format = get_string(body, "encoding_format", "float");
  if (format != "float" && format != "base64")
    bad("encoding_format", fmt::format("'encoding_format' is '{}'; it must be 'float' or 'base64'", format));
  r.base64 = format == "base64";
  return r;
}

TranslateRequest parse_translate(const json& body) {
  require_object(body);
  TranslateRequest r;
  r.model = get_string(body, "model");
  const json* q = field(body, "q");
  if (!q) bad("q", "'q' is required");
  r.q = strings(*q, "q");
  r.q_is_array = q->is_array();
  r.source = get_string(body, "source", "auto");
  r.target = get_string(body, "target");
  r.format = get_string(body, "format", "text");
  if (r.format != "text") bad("format", fmt::format("'format' is '{}'; only 'text' is supported", r.format));
  r.alternatives = get_int(body, "alternatives", 0, 8).value_or(0);
  r.beams = get_int(body, "beams", 1, 16);
  return r;
}

TokenizeRequest parse_tokenize(const json& body) {
  require_object(body);
  TokenizeRequest r;
  r.model = get_string(body, "model");
  const json* c = field(body, "content");
  if (!c) bad("content", "'content' is required");
  if (!c->is_string()) wrong_type("content", *c, "a string");
  r.content = c->get<std::string>();
  r.with_pieces = get_bool(body, "with_pieces", false);
  return r;
}

DetokenizeRequest parse_detokenize(const json& body) {
  require_object(body);
  DetokenizeRequest r;
  r.model = get_string(body, "model");
  const json* t = field(body, "tokens");
  if (!t) bad("tokens", "'tokens' is required");
  if (!t->is_array()) wrong_type("tokens", *t, "an array of token ids");
  r.tokens = token_ids(*t, "tokens");
  return r;
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace tfm::serve
