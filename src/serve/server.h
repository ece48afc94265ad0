// tfm serve: the HTTP front of the schedulers (cpp-httplib), speaking OpenAI's API (completions, chat
// completions, embeddings, models), LibreTranslate's (/translate, /languages) and llama-server's (/health,
// /tokenize, /detokenize, /metrics). The CLI only builds the options and calls run_server().
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "serve/scheduler.h"

namespace tfm::serve {

struct ServedModelSpec {
  std::string name, path;
};

struct ServerOptions {
  std::vector<ServedModelSpec> models;  // the first is the default for requests that name none
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  SchedulerOptions scheduler;
  std::string api_key;  // empty: no authentication
  int64_t max_body_bytes = 1 << 20;
  double timeout_seconds = 600;   // a request's whole time; also how long SIGTERM waits for in-flight ones
  int64_t beams = 4;              // /translate's default beam size
  int64_t max_prompt_tokens = 0;  // 0: the model's context
};

// Loads the models, listens, prints "tfm serve: listening on http://HOST:PORT" and one line per model
// on stdout when ready, and serves until SIGINT or SIGTERM; then it stops accepting, lets the in-flight
// requests finish (up to timeout_seconds) and returns 0. /health answers 503 while the models load.
int run_server(const ServerOptions& options);

}  // namespace tfm::serve
