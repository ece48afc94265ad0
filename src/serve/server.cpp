#include "serve/server.h"

#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "core/base64.h"
#include "core/utf8.h"
#include "serve/api.h"
#include "serve/completion.h"
#include "serve/metrics.h"
#include "serve/served_model.h"

namespace tfm::serve {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A request id as OpenAI's look ("cmpl-" + 24 hex digits).
std::string request_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return fmt::format("{}{:08x}{:016x}", prefix, uint32_t(salt), ++counter);
}

// Compares in time that depends only on the lengths, so an attacker learns nothing from how long a wrong
// key took to refuse.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) diff |= (i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0);
  return diff == 0;
}

std::string language_name(const std::string& code) {
  static const std::map<std::string, std::string> names = {
      {"ar", "Arabic"},  {"de", "German"},   {"en", "English"}, {"es", "Spanish"},    {"fr", "French"},
      {"it", "Italian"}, {"ja", "Japanese"}, {"nl", "Dutch"},   {"pt", "Portuguese"}, {"ru", "Russian"},
      {"zh", "Chinese"}, {"ko", "Korean"},   {"pl", "Polish"},  {"tr", "Turkish"}};
  auto it = names.find(code);
  return it == names.end() ? code : it->second;
}

// A streamed response's writer: server-sent events, one "data: JSON" event each. Several generation threads
// of one request (several prompts) write through it.
class EventStream {
 public:
  explicit EventStream(httplib::DataSink& sink) : sink_(sink) {}
  bool send(const json& event) { return write("data: " + dump(event) + "\n\n"); }
  bool done() { return write("data: [DONE]\n\n"); }
  bool write(const std::string& text) {
    std::lock_guard lock(mutex_);
    if (broken_) return false;
    broken_ = !sink_.write(text.data(), text.size());
    return !broken_;
  }
  bool broken() {
    std::lock_guard lock(mutex_);
    return broken_;
  }

 private:
  std::mutex mutex_;
  httplib::DataSink& sink_;
  bool broken_ = false;
};

// Runs fn(i) for i in [0, count) on up to `width` threads (the calling one among them), so that the parts
// of one request (prompts, sentences) are decoded in the same scheduler passes; rethrows the first error.
void parallel_for(size_t count, size_t width, const std::function<void(size_t)>& fn) {
  if (count == 1) return fn(0);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (size_t i; (i = next++) < count;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        next = count;
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(count, width); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

// A form's fields as the JSON body would have them: every value checked as UTF-8, the integer fields of
// LibreTranslate's form (beams, alternatives) as numbers.
json form_fields(const json& form) {
  json body = json::object();
  for (const auto& [k, v] : form.items()) {
    const std::string text = v.get<std::string>();
    if (auto bad_byte = find_invalid_utf8(text))
      throw ApiError(400,
                     fmt::format("the form field '{}' is not valid UTF-8 (byte offset {})", k, *bad_byte), k,
                     "invalid_utf8");
    body[k] = text;
    if (k == "beams" || k == "alternatives") {
      int64_t number = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (ec == std::errc() && end == text.data() + text.size()) body[k] = number;
    }
  }
  return body;
}

class Server {
 public:
  explicit Server(const ServerOptions& options) : options_(options) {}
  int run();

 private:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&, const json&)>;
  // Registers `handler` for `path`: authentication, JSON parsing (POST), errors in OpenAI's shape, metrics.
  void route(const char* method, const std::string& path, const std::string& endpoint, Handler handler);
  void authorize(const httplib::Request& req, const json& body) const;
  ServedModel& model_for(const std::string& name, const std::string& param = "model");
  std::vector<int64_t> prompt_ids(const ServedModel& m, const Prompt& p, const std::string& param) const;
  CompletionSpec completion_spec(const ServedModel& m, std::vector<int64_t> prompt, const SamplingParams& p,
                                 int64_t default_max_tokens) const;
  // Whether the request should stop: its deadline passed, or the server is stopping for good.
  std::function<bool()> cancellation(Clock::time_point start,
                                     const std::shared_ptr<EventStream>& stream = {}) const;

  void completions(const httplib::Request& req, httplib::Response& res, const json& body, bool chat);
  void embeddings(httplib::Response& res, const json& body);
  void translate(httplib::Response& res, const json& body);
  void languages(httplib::Response& res);
  void tokenize(httplib::Response& res, const json& body);
  void detokenize(httplib::Response& res, const json& body);
  void list_models(httplib::Response& res);

  const ServerOptions& options_;
  httplib::Server http_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::atomic<bool> ready_{false}, aborting_{false};
  Metrics metrics_;
};

void Server::route(const char* method, const std::string& path, const std::string& endpoint,
                   Handler handler) {
  auto wrapped = [this, endpoint, handler, method](const httplib::Request& req, httplib::Response& res) {
    try {
      if (!ready_) throw ApiError(503, "the server is loading its models", "", "loading");
      // A key in the header is checked before the body is read; LibreTranslate's clients may send theirs in
      // the body instead.
      const bool header_key = req.has_header("Authorization");
      if (header_key || endpoint != "/translate") authorize(req, json::object());
      json body = json::object();
      if (std::string_view(method) == "POST") {
        // LibreTranslate's clients may send forms; everything else is JSON (also under curl -d's form type).
        const std::string type = req.get_header_value("Content-Type");
        const size_t first = req.body.find_first_not_of(" \t\r\n");
        const bool looks_json =
            first != std::string::npos && (req.body[first] == '{' || req.body[first] == '[');
        if (!looks_json && (type.starts_with("application/x-www-form-urlencoded") ||
                            type.starts_with("multipart/form-data"))) {
          for (const auto& [k, v] : req.params) body[k] = v;
          for (const auto& [k, f] : req.files) body[k] = f.content;
          body = form_fields(body);
        } else {
          body = parse_body(req.body);
        }
      }
      if (!header_key && endpoint == "/translate") authorize(req, body);
      handler(req, res, body);
    } catch (const ApiError& e) {
      res.status = e.status();
      res.set_content(dump(e.body()), "application/json");
    } catch (const QueueFull& e) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content(dump(ApiError(429, e.what(), "", "queue_full").body()), "application/json");
    } catch (const OverBudget& e) {
      res.status = 400;
      res.set_content(dump(ApiError(400, e.what(), "max_tokens", "kv_budget_exceeded").body()),
                      "application/json");
    } catch (const Cancelled& e) {
      res.status = 503;
      res.set_content(dump(ApiError(503, e.what(), "", "cancelled").body()), "application/json");
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(dump(ApiError(500, e.what(), "", "internal_error").body()), "application/json");
    }
    // A streamed response counts when its headers go out.
    metrics_.count_request(endpoint, res.status == -1 ? 200 : res.status);
  };
  if (std::string_view(method) == "POST")
    http_.Post(path, wrapped);
  else
    http_.Get(path, wrapped);
}

void Server::authorize(const httplib::Request& req, const json& body) const {
  if (options_.api_key.empty()) return;
  std::string key;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.starts_with("Bearer ")) key = auth.substr(7);
  // LibreTranslate sends its key in the body.
  if (key.empty() && body.contains("api_key") && body["api_key"].is_string()) key = body["api_key"];
  if (key.empty()) throw ApiError(401, "no API key: send 'Authorization: Bearer KEY'", "", "missing_api_key");
  if (!constant_time_equal(key, options_.api_key))
    throw ApiError(401, "the API key is not valid", "", "invalid_api_key");
}

ServedModel& Server::model_for(const std::string& name, const std::string& param) {
  if (name.empty()) {
    if (models_.size() == 1) return *models_[0];
    throw ApiError(400, fmt::format("'{}' is required: this server has {} models", param, models_.size()),
                   param, "missing_model");
  }
  for (auto& m : models_)
    if (m->name == name) return *m;
  throw ApiError(404, fmt::format("The model '{}' does not exist", name), param, "model_not_found");
}

std::vector<int64_t> Server::prompt_ids(const ServedModel& m, const Prompt& p,
                                        const std::string& param) const {
  std::vector<int64_t> ids = p.ids;
  if (!p.is_ids) {
    const std::vector<int32_t> encoded = m.tokenizer().encode(p.text);
    ids.assign(encoded.begin(), encoded.end());
  }
  if (ids.empty())
    throw ApiError(400, fmt::format("'{}' is empty: it holds no token", param), param, "empty_prompt");
  for (int64_t t : ids)
    if (t >= m.config().tgt_vocab)
      throw ApiError(
          400,
          fmt::format("'{}' holds the token id {}; the vocabulary has {}", param, t, m.config().tgt_vocab),
          param, "invalid_token");
  const int64_t limit = options_.max_prompt_tokens > 0
                            ? std::min(options_.max_prompt_tokens, m.config().max_len)
                            : m.config().max_len;
  if (int64_t(ids.size()) > limit)
    throw ApiError(400, fmt::format("'{}' has {} tokens; at most {} are allowed", param, ids.size(), limit),
                   param, "prompt_too_long");
  return ids;
}

CompletionSpec Server::completion_spec(const ServedModel& m, std::vector<int64_t> prompt,
                                       const SamplingParams& p, int64_t default_max_tokens) const {
  const ModelConfig& cfg = m.config();
  const int64_t room = cfg.max_len - int64_t(prompt.size());
  if (room < 1)
    throw ApiError(400, fmt::format("the prompt fills the model's whole context of {} tokens", cfg.max_len),
                   "prompt", "context_length_exceeded");
  const int64_t max_tokens = p.max_tokens.value_or(std::min(default_max_tokens, room));
  if (max_tokens > room)
    throw ApiError(400,
                   fmt::format("This model's maximum context length is {} tokens. However, you requested {} "
                               "tokens ({} in the prompt, {} for the completion).",
                               cfg.max_len, int64_t(prompt.size()) + max_tokens, prompt.size(), max_tokens),
                   "max_tokens", "context_length_exceeded");
  CompletionSpec spec;
  spec.prompt = std::move(prompt);
  spec.n = p.n;
  spec.rules.max_new_tokens = max_tokens;
  if (!p.ignore_eos) spec.rules.eos_id = cfg.eos_id;
  spec.rules.repetition_penalty = p.repetition_penalty;
  if (p.temperature > 0) {
    infer::SamplingOptions s;
    s.temperature = p.temperature, s.top_k = p.top_k, s.top_p = p.top_p;
    s.seed = p.seed.value_or(std::random_device{}() | uint64_t(std::random_device{}()) << 32);
    spec.sampling = s;
  }
  spec.presence_penalty = p.presence_penalty, spec.frequency_penalty = p.frequency_penalty;
  spec.stop = p.stop;
  spec.logprobs = p.logprobs;
  return spec;
}

std::function<bool()> Server::cancellation(Clock::time_point start,
                                           const std::shared_ptr<EventStream>& stream) const {
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options_.timeout_seconds));
  return [this, deadline, stream] {
    return aborting_ || Clock::now() > deadline || (stream && stream->broken());
  };
}

// OpenAI's completion logprobs object: tokens, token_logprobs, top_logprobs, text_offset.
json completion_logprobs(const tokenize::Tokenizer& tok, std::span<const TokenLogprob> lps, size_t offset) {
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const TokenLogprob& lp : lps) {
    const std::string text = tok.decode(std::vector<int32_t>{int32_t(lp.token)}, false);
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(lp.logprob);
    json top = json::object();
    for (const auto& [t, l] : lp.top) top[tok.decode(std::vector<int32_t>{int32_t(t)}, false)] = l;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += text.size();
  }
  return out;
}

// Chat's: {"content": [{"token", "logprob", "bytes", "top_logprobs"}]}.
json chat_logprobs(const tokenize::Tokenizer& tok, std::span<const TokenLogprob> lps) {
  auto entry = [&](int64_t token, float logprob) {
    const std::string text = tok.decode(std::vector<int32_t>{int32_t(token)}, false);
    json bytes = json::array();
    for (unsigned char c : text) bytes.push_back(int(c));
    return json{{"token", text}, {"logprob", logprob}, {"bytes", bytes}};
  };
  json content = json::array();
  for (const TokenLogprob& lp : lps) {
    json e = entry(lp.token, lp.logprob);
    e["top_logprobs"] = json::array();
    for (const auto& [t, l] : lp.top) e["top_logprobs"].push_back(entry(t, l));
    content.push_back(e);
  }
  return {{"content", content}};
}

void Server::completions(const httplib::Request&, httplib::Response& res, const json& body, bool chat) {
  const Clock::time_point start = Clock::now();
  std::string model_name;
  std::vector<Prompt> prompts;
  SamplingParams params;
  if (chat) {
    ChatRequest r = parse_chat(body);
    model_name = r.model, params = r.params;
    ServedModel& m = model_for(r.model);
    if (m.config().arch != Arch::DecoderOnly)
      throw ApiError(400, fmt::format("'{}' is an {} model; chat needs a decoder-only one", m.name, m.kind()),
                     "model", "wrong_model_kind");
    const tokenize::Tokenizer& tok = m.tokenizer();
    const std::string bos = tok.id_to_token(int32_t(m.config().bos_id)).value_or("");
    const std::string eos = tok.id_to_token(int32_t(m.config().eos_id)).value_or("");
    const ChatTemplate& tmpl = m.chat_template ? *m.chat_template : ChatTemplate::fallback();
    try {
      Prompt rendered;
      rendered.text = tmpl.render(r.messages, /*add_generation_prompt=*/true, bos, eos);
      prompts.push_back(rendered);
    } catch (const ApiError&) {
      throw;
    } catch (const Error& e) {  // the template's raise_exception: the conversation breaks its rules
      throw ApiError(400, e.what(), "messages", "invalid_messages");
    }
  } else {
    CompletionRequest r = parse_completion(body);
    model_name = r.model, params = r.params, prompts = r.prompts;
  }
  ServedModel& m = model_for(model_name);
  if (m.config().arch != Arch::DecoderOnly)
    throw ApiError(
        400,
        fmt::format("'{}' is an {} model; completions need a decoder-only one{}", m.name, m.kind(),
                    m.config().arch == Arch::EncoderDecoder ? " (translate with POST /translate)" : ""),
        "model", "wrong_model_kind");
  std::vector<CompletionSpec> specs;
  for (size_t i = 0; i < prompts.size(); ++i)
    specs.push_back(completion_spec(m, prompt_ids(m, prompts[i], chat ? "messages" : "prompt"), params,
                                    chat ? m.config().max_len : 16));
  const std::string id = request_id(chat ? "chatcmpl-" : "cmpl-");
  const int64_t created = unix_time();
  const std::string object = chat ? "chat.completion" : "text_completion";
  const int64_t n = params.n;
  const tokenize::Tokenizer& tok = m.tokenizer();

  // What one request's choices are at the end: per prompt, n choices.
  struct Outcome {
    std::vector<std::vector<CompletionChoice>> choices;
    int64_t prompt_tokens = 0, completion_tokens = 0;
  };
  auto outcome = std::make_shared<Outcome>();
  outcome->choices.resize(specs.size());
  for (const CompletionSpec& s : specs) outcome->prompt_tokens += int64_t(s.prompt.size());
  auto finish = [this, &m, outcome] {
    for (const auto& choices : outcome->choices)
      for (const CompletionChoice& c : choices) outcome->completion_tokens += int64_t(c.tokens.size());
    metrics_.count_tokens(m.name, outcome->prompt_tokens, outcome->completion_tokens);
  };
  auto usage = [outcome] {
    return json{{"prompt_tokens", outcome->prompt_tokens},
                {"completion_tokens", outcome->completion_tokens},
                {"total_tokens", outcome->prompt_tokens + outcome->completion_tokens}};
  };
  const size_t width = size_t(options_.scheduler.max_running);

  if (!params.stream) {
    auto cancelled = cancellation(start);
    std::atomic<bool> first{true};
    std::vector<Clock::time_point> last(specs.size() * size_t(n), start);
    parallel_for(specs.size(), width, [&](size_t p) {
      std::unique_ptr<Sequence> seq = admit(*m.scheduler, specs[p], cancelled);
      outcome->choices[p] = complete(*seq, tok, specs[p], [&](int64_t row, const std::string&, auto) {
        const Clock::time_point now = Clock::now();
        if (first.exchange(false)) metrics_.observe_first_token(seconds_since(start));
        Clock::time_point& prev = last[p * size_t(n) + size_t(row)];
        if (prev != start) metrics_.observe_token_gap(std::chrono::duration<double>(now - prev).count());
        prev = now;
        return true;
      });
    });
    finish();
    json choices = json::array();
    for (size_t p = 0; p < specs.size(); ++p)
      for (size_t i = 0; i < outcome->choices[p].size(); ++i) {
        const CompletionChoice& c = outcome->choices[p][i];
        json choice = {
            {"index", p * size_t(n) + i}, {"finish_reason", c.finish_reason}, {"logprobs", nullptr}};
        if (params.return_tokens) choice["tokens"] = c.tokens;
        if (chat) {
          choice["message"] = {{"role", "assistant"}, {"content", c.text}};
          if (specs[p].logprobs) choice["logprobs"] = chat_logprobs(tok, c.logprobs);
        } else {
          const std::string prefix =
              params.echo
                  ? tok.decode(std::vector<int32_t>(specs[p].prompt.begin(), specs[p].prompt.end()), true)
                  : "";
          choice["text"] = prefix + c.text;
          if (specs[p].logprobs) choice["logprobs"] = completion_logprobs(tok, c.logprobs, prefix.size());
        }
        choices.push_back(choice);
      }
    res.set_content(dump({{"id", id},
                          {"object", object},
                          {"created", created},
                          {"model", m.name},
                          {"choices", choices},
                          {"usage", usage()}}),
                    "application/json");
    return;
  }

  // Streaming: the generation runs inside the content provider, which httplib calls after this handler
  // returns; everything it uses is owned by the lambda. The first prompt's sequence is admitted here, so
  // that a full queue or an impossible budget gets its status (429, 400) before the stream's 200.
  std::shared_ptr<Sequence> first_sequence = admit(*m.scheduler, specs[0], cancellation(start));
  const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  auto specs_shared = std::make_shared<std::vector<CompletionSpec>>(std::move(specs));
  ServedModel* model = &m;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [this, model, specs_shared, first_sequence, outcome,
                                                         finish, usage, id, created, chunk_object, chat, n,
                                                         params, start,
                                                         width](size_t, httplib::DataSink& sink) mutable {
    auto stream = std::make_shared<EventStream>(sink);
    const std::vector<CompletionSpec>& specs = *specs_shared;
    const tokenize::Tokenizer& tok = model->tokenizer();
    auto chunk = [&](size_t index, json delta_or_text, json finish_reason, json logprobs) {
      json choice = {{"index", index}, {"finish_reason", finish_reason}, {"logprobs", logprobs}};
      choice[chat ? "delta" : "text"] = std::move(delta_or_text);
      return json{{"id", id},
                  {"object", chunk_object},
                  {"created", created},
                  {"model", model->name},
                  {"choices", json::array({choice})}};
    };
    auto cancelled = cancellation(start, stream);
    std::atomic<bool> first{true};
    std::vector<Clock::time_point> last(specs.size() * size_t(n), start);
    try {
      if (chat)
        for (size_t i = 0; i < specs.size() * size_t(n); ++i)
          stream->send(chunk(i, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
      parallel_for(specs.size(), width, [&](size_t p) {
        const std::string echo =
            params.echo
                ? tok.decode(std::vector<int32_t>(specs[p].prompt.begin(), specs[p].prompt.end()), true)
                : "";
        std::vector<size_t> offsets(size_t(n), echo.size());
        std::vector<bool> echoed(size_t(n), echo.empty());
        std::shared_ptr<Sequence> seq =
            p == 0 ? std::move(first_sequence) : admit(*model->scheduler, specs[p], cancelled);
        outcome->choices[p] =
            complete(*seq, tok, specs[p],
                     [&](int64_t row, const std::string& delta, std::span<const TokenLogprob> lps) {
                       const size_t index = p * size_t(n) + size_t(row);
                       const Clock::time_point now = Clock::now();
                       if (first.exchange(false)) metrics_.observe_first_token(seconds_since(start));
                       Clock::time_point& prev = last[index];
                       if (prev != start)
                         metrics_.observe_token_gap(std::chrono::duration<double>(now - prev).count());
                       prev = now;
                       if (delta.empty() && echoed[size_t(row)]) return !stream->broken();
                       const std::string text = (echoed[size_t(row)] ? "" : echo) + delta;
                       echoed[size_t(row)] = true;
                       json logprobs = nullptr;
                       if (specs[p].logprobs)
                         logprobs = chat ? chat_logprobs(tok, lps)
                                         : completion_logprobs(tok, lps, offsets[size_t(row)]);
                       offsets[size_t(row)] += delta.size();
                       return stream->send(
                           chunk(index, chat ? json{{"content", text}} : json(text), nullptr, logprobs));
                     });
        for (size_t i = 0; i < outcome->choices[p].size(); ++i)
          stream->send(chunk(p * size_t(n) + i, chat ? json::object() : json(""),
                             outcome->choices[p][i].finish_reason, nullptr));
      });
      finish();
      if (params.include_usage)
        stream->send({{"id", id},
                      {"object", chunk_object},
                      {"created", created},
                      {"model", model->name},
                      {"choices", json::array()},
                      {"usage", usage()}});
      stream->done();
    } catch (const ApiError& e) {
      stream->send(e.body());
    } catch (const QueueFull& e) {
      stream->send(ApiError(429, e.what(), "", "queue_full").body());
    } catch (const OverBudget& e) {
      stream->send(ApiError(400, e.what(), "max_tokens", "kv_budget_exceeded").body());
    } catch (const Cancelled&) {
      // The client went away (nothing more to say) or the deadline passed.
      if (!stream->broken())
        stream->send(ApiError(503, "the request was cancelled: past its time limit", "", "timeout").body());
    } catch (const std::exception& e) {
      stream->send(ApiError(500, e.what(), "", "internal_error").body());
    }
    sink.done();
    return true;
  });
}

void Server::embeddings(httplib::Response& res, const json& body) {
  EmbeddingRequest r = parse_embedding(body);
  ServedModel& m = model_for(r.model);
  std::vector<std::vector<int64_t>> inputs;
  int64_t tokens = 0;
  for (const Prompt& p : r.inputs) {
    inputs.push_back(prompt_ids(m, p, "input"));
    tokens += int64_t(inputs.back().size());
  }
  json data = json::array();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<float> e = embed(m, inputs[i]);
    json item = {{"object", "embedding"}, {"index", i}};
    if (r.base64)
      item["embedding"] =
          base64_encode(std::string_view(reinterpret_cast<const char*>(e.data()), e.size() * sizeof(float)));
    else
      item["embedding"] = e;
    data.push_back(item);
  }
  metrics_.count_tokens(m.name, tokens, 0);
  res.set_content(dump({{"object", "list"},
                        {"data", data},
                        {"model", m.name},
                        {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}),
                  "application/json");
}

void Server::translate(httplib::Response& res, const json& body) {
  const Clock::time_point start = Clock::now();
  TranslateRequest r = parse_translate(body);
  ServedModel* m = nullptr;
  if (r.model.empty()) {  // the translation model for this language pair
    for (auto& candidate : models_)
      if (candidate->config().arch == Arch::EncoderDecoder &&
          (r.source == "auto" || candidate->source_language.empty() ||
           candidate->source_language == r.source) &&
          (r.target.empty() || candidate->target_language.empty() ||
           candidate->target_language == r.target)) {
        m = candidate.get();
        break;
      }
    if (!m)
      throw ApiError(400,
                     fmt::format("no model translates '{}' to '{}' (GET /languages)", r.source, r.target),
                     r.target.empty() ? "source" : "target", "unsupported_language");
  } else {
    m = &model_for(r.model);
    if (m->config().arch != Arch::EncoderDecoder)
      throw ApiError(
          400, fmt::format("'{}' is a {} model; /translate needs an encoder-decoder", m->name, m->kind()),
          "model", "wrong_model_kind");
  }
  if (r.target.empty()) throw ApiError(400, "'target' is required", "target", "invalid_value");
  if (!m->target_language.empty() && r.target != m->target_language)
    throw ApiError(400,
                   fmt::format("'{}' translates to '{}', not '{}'", m->name, m->target_language, r.target),
                   "target", "unsupported_language");
  if (r.source != "auto" && !m->source_language.empty() && r.source != m->source_language)
    throw ApiError(400,
                   fmt::format("'{}' translates from '{}', not '{}'", m->name, m->source_language, r.source),
                   "source", "unsupported_language");
  const int64_t beams =
      std::max(r.beams.value_or(options_.beams), r.alternatives > 0 ? r.alternatives + 1 : 1);
  auto cancelled = cancellation(start);
  std::vector<std::vector<std::string>> out(r.q.size());
  parallel_for(r.q.size(), size_t(options_.scheduler.max_running), [&](size_t i) {
    out[i] = serve::translate(*m, r.q[i], beams, 1 + r.alternatives, cancelled);
  });
  json text = json::array(), alternatives = json::array();
  for (auto& t : out) {
    text.push_back(t[0]);
    alternatives.push_back(json(std::vector<std::string>(t.begin() + 1, t.end())));
  }
  json response = {{"translatedText", r.q_is_array ? text : text[0]}};
  if (r.alternatives > 0) response["alternatives"] = r.q_is_array ? alternatives : alternatives[0];
  if (r.source == "auto" && !m->source_language.empty()) {
    const json detected = {{"confidence", 100.0}, {"language", m->source_language}};
    response["detectedLanguage"] = r.q_is_array ? json(std::vector<json>(r.q.size(), detected)) : detected;
  }
  res.set_content(dump(response), "application/json");
}

void Server::languages(httplib::Response& res) {
  std::map<std::string, std::vector<std::string>> targets;
  for (const auto& m : models_)
    if (m->config().arch == Arch::EncoderDecoder && !m->source_language.empty()) {
      targets[m->source_language].push_back(m->target_language);
      targets[m->target_language];
    }
  json out = json::array();
  for (const auto& [code, to] : targets)
    out.push_back({{"code", code}, {"name", language_name(code)}, {"targets", to}});
  res.set_content(dump(out), "application/json");
}

void Server::tokenize(httplib::Response& res, const json& body) {
  TokenizeRequest r = parse_tokenize(body);
  const ServedModel& m = model_for(r.model);
  json tokens = json::array();
  for (int32_t id : m.tokenizer().encode(r.content)) {
    if (r.with_pieces)
      tokens.push_back({{"id", id}, {"piece", m.tokenizer().decode(std::vector<int32_t>{id}, false)}});
    else
      tokens.push_back(id);
  }
  res.set_content(dump({{"tokens", tokens}}), "application/json");
}

void Server::detokenize(httplib::Response& res, const json& body) {
  DetokenizeRequest r = parse_detokenize(body);
  const ServedModel& m = model_for(r.model);
  std::vector<int32_t> ids;
  for (int64_t t : r.tokens) {
    if (t >= m.tokenizer().vocab_size())
      throw ApiError(400,
                     fmt::format("'tokens' holds {}; the vocabulary has {}", t, m.tokenizer().vocab_size()),
                     "tokens", "invalid_token");
    ids.push_back(int32_t(t));
  }
  res.set_content(dump({{"content", m.tokenizer().decode(ids, false)}}), "application/json");
}

void Server::list_models(httplib::Response& res) {
  json data = json::array();
  for (const auto& m : models_)
    data.push_back({{"id", m->name},
                    {"object", "model"},
                    {"created", unix_time()},
                    {"owned_by", "tfm"},
                    {"meta",
                     {{"kind", m->kind()},
                      {"path", m->path},
                      {"context_length", m->config().max_len},
                      {"vocab_size", m->config().tgt_vocab}}}});
  res.set_content(dump({{"object", "list"}, {"data", data}}), "application/json");
}

int Server::run() {
  // SIGINT and SIGTERM are taken by one thread (sigwait) and no other: blocked here, before any thread
  // exists, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that went away shows as a failed write, not a dead server

  http_.set_payload_max_length(size_t(options_.max_body_bytes));
  // Each streamed chunk goes out at once (no Nagle delay waiting for the client's ACK), and keep-alive
  // connections stay open for many requests.
  http_.set_tcp_nodelay(true);
  http_.set_keep_alive_max_count(100000);
  // Debian's compiled cpp-httplib listens with a backlog of 5, too few for bursts of clients: the
  // listening socket is noted here and listen() is called again with the system's maximum after bind.
  int listening_socket = -1;
  http_.set_socket_options([&listening_socket](socket_t sock) {
    httplib::default_socket_options(sock);
    listening_socket = sock;
  });
  http_.set_read_timeout(std::chrono::seconds(30));
  http_.set_keep_alive_timeout(5);
  const size_t threads = size_t(options_.scheduler.max_running + options_.scheduler.max_waiting) + 8;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 413
                                    ? "the request body is larger than the server accepts (--max-body-bytes)"
                                : res.status == 404 ? fmt::format("no endpoint {} {}", req.method, req.path)
                                                    : fmt::format("HTTP {}", res.status);
    res.set_content(dump(ApiError(res.status, message, "", res.status == 413 ? "body_too_large" : "").body()),
                    "application/json");
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (ready_) {
      res.set_content(R"({"status":"ok"})", "application/json");
    } else {
      res.status = 503;
      res.set_content(dump(ApiError(503, "Loading model", "", "loading").body()), "application/json");
    }
    metrics_.count_request("/health", res.status);
  });
  route("GET", "/v1/models", "/v1/models", [this](auto&, auto& res, auto&) { list_models(res); });
  route("GET", "/models", "/v1/models", [this](auto&, auto& res, auto&) { list_models(res); });
  route("GET", R"(/v1/models/([^/]+))", "/v1/models/{id}", [this](auto& req, auto& res, auto&) {
    const ServedModel& m = model_for(req.matches[1].str());
    res.set_content(
        dump({{"id", m.name}, {"object", "model"}, {"created", unix_time()}, {"owned_by", "tfm"}}),
        "application/json");
  });
  route("POST", "/v1/completions", "/v1/completions",
        [this](auto& req, auto& res, auto& body) { completions(req, res, body, false); });
  route("POST", "/v1/chat/completions", "/v1/chat/completions",
        [this](auto& req, auto& res, auto& body) { completions(req, res, body, true); });
  route("POST", "/v1/embeddings", "/v1/embeddings",
        [this](auto&, auto& res, auto& body) { embeddings(res, body); });
  route("POST", "/translate", "/translate", [this](auto&, auto& res, auto& body) { translate(res, body); });
  route("GET", "/languages", "/languages", [this](auto&, auto& res, auto&) { languages(res); });
  route("POST", "/tokenize", "/tokenize", [this](auto&, auto& res, auto& body) { tokenize(res, body); });
  route("POST", "/detokenize", "/detokenize",
        [this](auto&, auto& res, auto& body) { detokenize(res, body); });
  route("GET", "/metrics", "/metrics", [this](auto&, auto& res, auto&) {
    std::vector<std::pair<std::string, SchedulerStats>> stats;
    for (const auto& m : models_) stats.emplace_back(m->name, m->scheduler->stats());
    res.set_content(metrics_.render(stats), "text/plain; version=0.0.4");
  });

  const int port = options_.port == 0
                       ? http_.bind_to_any_port(options_.host)
                       : (http_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port < 0) fail("tfm serve: cannot listen on {}:{}", options_.host, options_.port);
  if (listening_socket >= 0) ::listen(listening_socket, SOMAXCONN);
  std::thread listener([this] { http_.listen_after_bind(); });

  // The signal thread: the first SIGINT/SIGTERM stops accepting and lets in-flight requests finish; past
  // the timeout (or at a second signal) the schedulers stop, which ends what still runs.
  std::atomic<bool> stopped{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (stopped) return;
    std::fprintf(stderr, "tfm serve: %s: finishing in-flight requests (at most %.0f s)\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", options_.timeout_seconds);
    std::thread abort_later([&] {
      const auto deadline = Clock::now() + std::chrono::duration<double>(options_.timeout_seconds);
      while (!stopped && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      aborting_ = true;
      for (auto& m : models_) m->scheduler->stop();
    });
    http_.stop();
    abort_later.join();
  });

  try {
    for (const ServedModelSpec& spec : options_.models)
      models_.push_back(load_served_model(spec.name, spec.path, options_.scheduler));
  } catch (...) {
    stopped = true;
    http_.stop();
    listener.join();
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    throw;
  }
  ready_ = true;
  std::printf("tfm serve: listening on http://%s:%d\n", options_.host.c_str(), port);
  for (const auto& m : models_)
    std::printf("model %s: %s, %s, context %lld tokens%s\n", m->name.c_str(), m->path.c_str(), m->kind(),
                static_cast<long long>(m->config().max_len),
                m->source_language.empty()
                    ? ""
                    : fmt::format(", {} -> {}", m->source_language, m->target_language).c_str());
  std::fflush(stdout);
  listener.join();  // returns once stopped and every in-flight request is answered
  stopped = true;
  signal_thread.join();
  for (auto& m : models_) m->scheduler->stop();
  std::fprintf(stderr, "tfm serve: stopped\n");
  return 0;
}

}  // namespace

int run_server(const ServerOptions& options) {
  if (options.models.empty()) fail("tfm serve: no model (--model DIR)");
  Server server(options);
  return server.run();
}

}  // namespace tfm::serve
