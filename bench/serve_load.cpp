// Load generator for `tfm serve` (and for any server with the same endpoints, such as the PyTorch peer
// bench/peers/torch_serve_peer.py): C concurrent clients send a fixed, seeded mix of requests and time them.
//
//   load             --url http://127.0.0.1:PORT --mode completions|translate --prompts FILE --clients C
//                    [--requests N] [--max-seconds S] [--max-tokens 64] [--temperature 0] [--ignore-eos] ...
//   make-gpt2-small  --out DIR [--tokenizer lm-kjv/tokenizer.json]: a Hugging Face folder of GPT-2 small's
//                    shape (bench/gpt2_small.h) with random weights, its tokenizer lm-kjv's padded to 50,257
//                    ids.
//
// completions: POST /v1/completions with "stream": true; the SSE chunks are read as they arrive: time to
// first token = request sent -> first chunk with text, inter-token latency = the gaps between later chunks
// (one chunk per token; tfm serve sends one per decoded step), generated tokens = the usage chunk's
// completion_tokens (stream_options.include_usage). translate: POST /translate, one sentence per request; its
// latency is the whole request (there is no stream), and the generated tokens are counted afterwards,
// untimed, by POST /tokenize of each translation (the target tokenizer's count, EOS not included) when
// --count-tokens.
//
// The mix: request i takes prompt order[i % P], order a shuffle of the P prompts by --seed. Bounded: at most
// --requests requests and --max-seconds seconds (requests in flight at the deadline finish; no new ones
// start). Only loopback servers: any other host is refused.
//
// Prints one JSON line: clients, requests, completed, errors (and rate_limited, the 429s), generated_tokens,
// generated_tokens_per_s, ttft_p50/p99_ms, itl_p50/p99_ms, latency_p50/p99_ms, requests_per_s, wall_s.
#include <httplib.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gpt2_small.h"
#include "models/export_hf.h"
#include "models/family.h"
#include "models/transformer.h"
#include "tokenize/tokenizer.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Nearest-rank percentile; null when there are no samples.
json percentile(std::vector<double> v, double p) {
  if (v.empty()) return nullptr;
  std::sort(v.begin(), v.end());
  const size_t rank = size_t(std::ceil(p / 100.0 * double(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct Target {
  std::string host;
  int port = 0;
};

// http://HOST:PORT with HOST 127.0.0.1, localhost or [::1]; anything else is refused.
Target parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (!url.starts_with(scheme))
    throw std::runtime_error("--url must start with http:// (loopback only): " + url);
  std::string rest = url.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos)
    throw std::runtime_error("--url must be http://HOST:PORT, no path: " + url);
  std::string host, port;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string::npos) throw std::runtime_error("bad --url: " + url);
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else {
    const size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (host != "127.0.0.1" && host != "localhost" && host != "::1")
    throw std::runtime_error("refusing to load '" + host + "': only 127.0.0.1, localhost or [::1]");
  Target t;
  t.host = host == "localhost" ? "127.0.0.1" : host;
  t.port = port.empty() ? 80 : std::stoi(port);
  if (t.port <= 0 || t.port > 65535) throw std::runtime_error("bad port in --url: " + url);
  return t;
}

// Lines of a text file (a TSV's first column), empty ones skipped.
std::vector<std::string> read_prompts(const std::string& path, bool tsv_first_column, size_t limit) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (tsv_first_column) line = line.substr(0, line.find('\t'));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    out.push_back(line);
    if (limit > 0 && out.size() == limit) break;
  }
  if (out.empty()) throw std::runtime_error(path + " has no prompts");
  return out;
}

struct LoadOptions {
  std::string url, mode = "completions", model, prompts_file, api_key, source = "en", target = "es", tag;
  int clients = 1;
  int64_t requests = 64, max_tokens = 64, prompt_words = 0, beams = 0, warmup = 1;
  size_t prompt_limit = 0;
  double max_seconds = 120, temperature = 0, timeout_s = 600;
  uint64_t seed = 1;
  bool ignore_eos = false, tsv = false, count_tokens = false, new_connections = false;
};

struct Sample {
  bool ok = false, rate_limited = false;
  double latency_ms = 0;
  std::optional<double> ttft_ms;
  std::vector<double> gaps_ms;
  int64_t tokens = 0;
  std::string output;  // translate: the translation (for --count-tokens)
  std::string error;
};

class Loader {
 public:
  Loader(const LoadOptions& o, Target t, std::vector<std::string> prompts)
      : o_(o), target_(std::move(t)), prompts_(std::move(prompts)) {
    order_.resize(prompts_.size());
    std::iota(order_.begin(), order_.end(), size_t(0));
    std::mt19937_64 gen(o_.seed);
    std::shuffle(order_.begin(), order_.end(), gen);
  }

  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>(target_.host, target_.port);
    c->set_keep_alive(!o_.new_connections);
    c->set_tcp_nodelay(true);  // the request in one go, not held back by Nagle behind its headers
    c->set_read_timeout(std::chrono::seconds(int64_t(o_.timeout_s)));
    c->set_write_timeout(std::chrono::seconds(60));
    c->set_connection_timeout(std::chrono::seconds(10));
    return c;
  }

  httplib::Headers headers() const {
    httplib::Headers h;
    if (!o_.api_key.empty()) h.emplace("Authorization", "Bearer " + o_.api_key);
    return h;
  }

  std::string prompt_text(size_t i) const {
    std::string p = prompts_[order_[i % order_.size()]];
    if (o_.prompt_words > 0) {  // the first words only
      std::istringstream words(p);
      std::string w, out;
      for (int64_t k = 0; k < o_.prompt_words && (words >> w); ++k) out += (k ? " " : "") + w;
      p = out;
    }
    return p;
  }

  Sample completion(httplib::Client& c, size_t i) const {
    json body = {{"prompt", prompt_text(i)},
                 {"max_tokens", o_.max_tokens},
                 {"temperature", o_.temperature},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}}};
    if (!o_.model.empty()) body["model"] = o_.model;
    if (o_.ignore_eos) body["ignore_eos"] = true;
    if (o_.temperature > 0) body["seed"] = o_.seed + i;
    Sample s;
    std::string buffer, raw;
    int64_t chunks = 0;
    std::optional<int64_t> usage_tokens;
    Clock::time_point last;
    const Clock::time_point start = Clock::now();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.headers = headers();
    req.headers.emplace("Accept", "text/event-stream");
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    bool stream_error = false;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      const Clock::time_point now = Clock::now();
      if (raw.size() < 4096) raw.append(data, std::min(len, 4096 - raw.size()));
      buffer.append(data, len);
      for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
        const std::string event = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        if (!event.starts_with("data: ")) continue;
        const std::string payload = event.substr(6);
        if (payload == "[DONE]") continue;
        json j = json::parse(payload, nullptr, false);
        if (j.is_discarded() || j.contains("error")) {
          stream_error = true;
          s.error = payload.substr(0, 300);
          continue;
        }
        if (j.contains("usage") && j["usage"].is_object())
          usage_tokens = j["usage"].value("completion_tokens", int64_t(0));
        if (!j.contains("choices")) continue;
        for (const auto& ch : j["choices"]) {
          if (!ch.contains("text") || !ch["text"].is_string() || ch["text"].get<std::string>().empty())
            continue;
          if (chunks == 0)
            s.ttft_ms = ms_between(start, now);
          else
            s.gaps_ms.push_back(ms_between(last, now));
          last = now;
          ++chunks;
        }
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool sent = c.send(req, res, err);
    s.latency_ms = ms_between(start, Clock::now());
    if (!sent) {
      s.error = "transport: " + httplib::to_string(err);
      return s;
    }
    if (res.status != 200) {
      s.rate_limited = res.status == 429;
      s.error = "HTTP " + std::to_string(res.status) + ": " + raw.substr(0, 300);
      return s;
    }
    if (stream_error) return s;
    s.tokens = usage_tokens.value_or(chunks);
    s.ok = true;
    return s;
  }

  Sample translation(httplib::Client& c, size_t i) const {
    json body = {{"q", prompt_text(i)}, {"source", o_.source}, {"target", o_.target}, {"format", "text"}};
    if (!o_.model.empty()) body["model"] = o_.model;
    if (o_.beams > 0) body["beams"] = o_.beams;
    Sample s;
    const Clock::time_point start = Clock::now();
    auto res = c.Post("/translate", headers(), body.dump(), "application/json");
    s.latency_ms = ms_between(start, Clock::now());
    if (!res) {
      s.error = "transport: " + httplib::to_string(res.error());
      return s;
    }
    if (res->status != 200) {
      s.rate_limited = res->status == 429;
      s.error = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 300);
      return s;
    }
    json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.contains("translatedText") || !j["translatedText"].is_string()) {
      s.error = "bad response: " + res->body.substr(0, 300);
      return s;
    }
    s.ttft_ms = s.latency_ms;
    s.output = j["translatedText"];
    s.ok = true;
    return s;
  }

  Sample one(httplib::Client& c, size_t i) const {
    return o_.mode == "translate" ? translation(c, i) : completion(c, i);
  }

  // Tokens of each translation, by the server's /tokenize (untimed).
  int64_t count_tokens(const std::vector<Sample>& samples) const {
    auto c = client();
    int64_t total = 0;
    for (const Sample& s : samples) {
      if (!s.ok) continue;
      json body = {{"content", s.output}};
      if (!o_.model.empty()) body["model"] = o_.model;
      auto res = c->Post("/tokenize", headers(), body.dump(), "application/json");
      if (!res || res->status != 200) return -1;
      json j = json::parse(res->body, nullptr, false);
      if (j.is_discarded() || !j.contains("tokens")) return -1;
      total += int64_t(j["tokens"].size());
    }
    return total;
  }

  json run() const {
    {  // warm-up, untimed
      auto c = client();
      for (int64_t w = 0; w < o_.warmup; ++w) {
        const Sample s = one(*c, size_t(w));
        if (!s.ok) throw std::runtime_error("warm-up request failed: " + s.error);
      }
    }
    std::vector<Sample> samples;
    std::mutex mutex;
    std::atomic<int64_t> next{0};
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.max_seconds));
    auto worker = [&] {
      auto c = client();
      for (;;) {
        if (Clock::now() >= deadline) return;
        const int64_t i = next.fetch_add(1);
        if (i >= o_.requests) return;
        Sample s = one(*c, size_t(i));
        if (!s.ok || o_.new_connections) c = client();  // a fresh connection after an error
        std::lock_guard<std::mutex> lock(mutex);
        samples.push_back(std::move(s));
      }
    };
    std::vector<std::thread> threads;
    for (int k = 0; k < o_.clients; ++k) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
    const double wall = ms_between(start, Clock::now()) / 1000.0;

    std::vector<double> ttft, itl, latency;
    int64_t tokens = 0, errors = 0, limited = 0, completed = 0;
    std::string first_error;
    std::map<std::string, int64_t> kinds;  // "transport: Read", "HTTP 429", ...
    std::vector<double> failed_after;
    for (const Sample& s : samples) {
      if (!s.ok) {
        ++errors;
        limited += s.rate_limited;
        if (first_error.empty()) first_error = s.error;
        ++kinds[s.error.substr(0, s.error.find(':', s.error.starts_with("transport") ? 10 : 0))];
        failed_after.push_back(s.latency_ms);
        continue;
      }
      ++completed;
      tokens += s.tokens;
      latency.push_back(s.latency_ms);
      if (s.ttft_ms) ttft.push_back(*s.ttft_ms);
      itl.insert(itl.end(), s.gaps_ms.begin(), s.gaps_ms.end());
    }
    json out = {{"tool", "serve_load"},
                {"mode", o_.mode},
                {"clients", o_.clients},
                {"requests", int64_t(samples.size())},
                {"completed", completed},
                {"errors", errors},
                {"rate_limited", limited},
                {"wall_s", wall},
                {"requests_per_s", double(completed) / wall},
                {"latency_p50_ms", percentile(latency, 50)},
                {"latency_p99_ms", percentile(latency, 99)},
                {"ttft_p50_ms", percentile(ttft, 50)},
                {"ttft_p99_ms", percentile(ttft, 99)},
                {"itl_p50_ms", percentile(itl, 50)},
                {"itl_p99_ms", percentile(itl, 99)}};
    out["keep_alive"] = !o_.new_connections;
    if (!o_.tag.empty()) out["tag"] = o_.tag;
    if (!o_.model.empty()) out["model"] = o_.model;
    if (o_.mode == "completions") {
      out["max_tokens"] = o_.max_tokens;
      out["temperature"] = o_.temperature;
      out["ignore_eos"] = o_.ignore_eos;
      out["generated_tokens"] = tokens;
      out["generated_tokens_per_s"] = double(tokens) / wall;
    } else {
      out["beams"] = o_.beams > 0 ? json(o_.beams) : json("server default");
      out["ttft_p50_ms"] = nullptr, out["ttft_p99_ms"] = nullptr;  // no stream: latency is the whole request
      if (o_.count_tokens) {
        const int64_t t = count_tokens(samples);
        out["generated_tokens"] = t >= 0 ? json(t) : json(nullptr);
        out["generated_tokens_per_s"] = t >= 0 ? json(double(t) / wall) : json(nullptr);
      } else {
        out["generated_tokens"] = nullptr, out["generated_tokens_per_s"] = nullptr;
      }
    }
    if (!first_error.empty()) {
      out["first_error"] = first_error;
      out["error_kinds"] = kinds;
      out["failed_after_p50_ms"] = percentile(failed_after, 50);
    }
    return out;
  }

 private:
  const LoadOptions& o_;
  Target target_;
  std::vector<std::string> prompts_;
  std::vector<size_t> order_;
};

// GPT-2 small's shape, random weights (seed 1), with lm-kjv's tokenizer padded to the 50,257-token vocabulary
// (ids past its 8,000 decode to "<x12345>"; they are never produced by encoding).
int make_gpt2_small(const std::string& out, const std::string& tokenizer_path) {
  std::ifstream in(tokenizer_path);
  if (!in) throw std::runtime_error("cannot read " + tokenizer_path);
  json tok = json::parse(in);
  json& vocab = tok["model"]["vocab"];
  const nlohmann::json config = tfm::bench::gpt2_small_config();
  const int64_t vocab_size = config["vocab_size"];
  int64_t have = int64_t(vocab.size()) + int64_t(tok["added_tokens"].size());
  for (const auto& a : tok["added_tokens"])
    if (vocab.contains(a["content"].get<std::string>())) --have;  // counted once
  for (int64_t id = have; id < vocab_size; ++id) vocab["<x" + std::to_string(id) + ">"] = id;
  auto tokenizer = tfm::tokenize::load_tokenizer_json(tok.dump(), tokenizer_path + " (padded)");
  const tfm::Family* family = tfm::find_family(config);
  tfm::Transformer model(family->config(config));
  model.init_weights(1);
  const std::string type = tfm::export_hf(model, *tokenizer, out, "gpt2");
  std::printf(
      "%s\n",
      json{{"wrote", out}, {"model_type", type}, {"vocab_size", tokenizer->vocab_size()}}.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Load generator for tfm serve: concurrent streaming completions or /translate requests");
  app.require_subcommand(1);
  LoadOptions o;
  auto* load = app.add_subcommand("load", "send the requests and print one JSON line of figures");
  load->add_option("--url", o.url, "http://127.0.0.1:PORT (loopback only)")->required();
  load->add_option("--mode", o.mode, "completions (streamed) or translate")
      ->check(CLI::IsMember({"completions", "translate"}));
  load->add_option("--model", o.model, "the model field (default: none, the server's default)");
  load->add_option("--prompts", o.prompts_file, "one prompt or sentence per line")->required();
  load->add_flag("--tsv", o.tsv, "the prompts file is a TSV: its first column");
  load->add_option("--prompt-limit", o.prompt_limit, "use only the first N lines (0: all)");
  load->add_option("--prompt-words", o.prompt_words, "completions: only each line's first N words (0: all)");
  load->add_option("--clients", o.clients, "concurrent clients")->check(CLI::Range(1, 1024));
  load->add_option("--requests", o.requests, "requests in all (bounded)")
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  load->add_option("--max-seconds", o.max_seconds, "no new request after this many seconds")
      ->check(CLI::Range(0.1, 3600.0));
  load->add_option("--timeout", o.timeout_s, "seconds one request may take");
  load->add_option("--max-tokens", o.max_tokens, "completions: max_tokens");
  load->add_option("--temperature", o.temperature, "completions: temperature (0: greedy)");
  load->add_flag("--ignore-eos", o.ignore_eos, "completions: ignore_eos (every request runs max_tokens)");
  load->add_option("--seed", o.seed, "the mix's shuffle (and sampling seeds: seed + request index)");
  load->add_option("--source", o.source, "translate: source language");
  load->add_option("--target", o.target, "translate: target language");
  load->add_option("--beams", o.beams, "translate: beams (0: the server's default)");
  load->add_flag("--count-tokens", o.count_tokens,
                 "translate: count the translations' tokens by /tokenize afterwards");
  load->add_flag("--new-connections", o.new_connections,
                 "one connection per request (default: keep-alive, as SDKs do)");
  load->add_option("--api-key", o.api_key, "Authorization: Bearer KEY");
  load->add_option("--warmup", o.warmup, "untimed requests first");
  load->add_option("--tag", o.tag, "a label copied into the JSON line");
  std::string out_dir, tokenizer_path = std::string(TFM_BENCH_SHARED_DIR) + "/models/lm-kjv/tokenizer.json";
  auto* make =
      app.add_subcommand("make-gpt2-small", "write a GPT-2-small-shaped Hugging Face folder, random weights");
  make->add_option("--out", out_dir, "output folder")->required();
  make->add_option("--tokenizer", tokenizer_path, "a byte-level BPE tokenizer.json to pad to 50,257 ids");
  CLI11_PARSE(app, argc, argv);
  try {
    if (make->parsed()) return make_gpt2_small(out_dir, tokenizer_path);
    const Target target = parse_url(o.url);
    Loader loader(o, target, read_prompts(o.prompts_file, o.tsv, o.prompt_limit));
    std::printf("%s\n", loader.run().dump().c_str());
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_load: %s\n", e.what());
    return 1;
  }
}
