#include "cli/serve_command.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace tfm::cli {

CLI::App* add_serve_command(CLI::App& app, ServeCommandOptions& o) {
  auto* serve = app.add_subcommand(
      "serve", "Serve models over HTTP: OpenAI's completions, chat, embeddings; LibreTranslate's /translate");
  serve::ServerOptions& s = o.server;
  serve->add_option("--model", o.models, "A model folder or checkpoint, or NAME=DIR; repeat for more")
      ->required();
  serve->add_option("--host", s.host, "Address to listen on (loopback unless told)")->capture_default_str();
  serve->add_option("--port", s.port, "Port (0: any free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve->add_option("--threads", s.scheduler.threads, "OpenMP threads of the forward passes (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--parallel", s.scheduler.max_running, "Sequences decoded together at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-queue", s.scheduler.max_waiting, "Requests waiting at most; more get 429")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--kv-budget-mb", o.kv_budget_mb, "KV-cache memory of all running sequences, MB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--prefill-chunk", s.scheduler.prefill_chunk,
                   "Prompt tokens of a sequence per batched pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  auto* key = serve->add_option("--api-key", s.api_key, "Require 'Authorization: Bearer KEY'");
  serve->add_option("--api-key-file", o.api_key_file, "Read the API key from a file (first line)")
      ->excludes(key);
  serve->add_option("--max-body-bytes", s.max_body_bytes, "Largest request body; more get 413")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-prompt-tokens", s.max_prompt_tokens, "Longest prompt (0: the model's context)")
      ->check(CLI::NonNegativeNumber);
  serve
      ->add_option("--timeout", s.timeout_seconds,
                   "Seconds a request may take; also how long SIGTERM waits for in-flight requests")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--beams", s.beams, "/translate's default beam size")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  return serve;
}

int cmd_serve(ServeCommandOptions o) {
  for (const std::string& m : o.models) {
    const size_t eq = m.find('=');
    // NAME=DIR, unless the '=' is part of an existing path.
    if (eq != std::string::npos && eq > 0 && !std::filesystem::exists(m)) {
      o.server.models.push_back({m.substr(0, eq), m.substr(eq + 1)});
    } else {
      std::filesystem::path p = std::filesystem::path(m).lexically_normal();
      if (p.filename().empty()) p = p.parent_path();
      std::string name = p.filename().string();
      if (!std::filesystem::is_directory(p)) name = p.parent_path().filename().string();  // a checkpoint file
      o.server.models.push_back({name, m});
    }
  }
  for (size_t i = 0; i < o.server.models.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (o.server.models[i].name == o.server.models[j].name)
        fail("two models are named '{}': name them with --model NAME=DIR", o.server.models[i].name);
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    if (!in) fail("{}: cannot read the API key file", o.api_key_file);
    std::getline(in, o.server.api_key);
    while (!o.server.api_key.empty() && std::isspace(static_cast<unsigned char>(o.server.api_key.back())))
      o.server.api_key.pop_back();
    if (o.server.api_key.empty()) fail("{}: the API key file is empty", o.api_key_file);
  }
  o.server.scheduler.kv_budget_bytes = int64_t(o.kv_budget_mb * 1e6);
  return serve::run_server(o.server);
}

}  // namespace tfm::cli
