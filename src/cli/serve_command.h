// tfm serve: its command-line options, parsed into serve::ServerOptions.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "serve/server.h"

namespace tfm::cli {

struct ServeCommandOptions {
  std::vector<std::string> models;  // DIR or NAME=DIR
  std::string api_key_file;
  double kv_budget_mb = 1024;
  serve::ServerOptions server;
};

// Adds `tfm serve` and its options to `app`.
CLI::App* add_serve_command(CLI::App& app, ServeCommandOptions& options);
int cmd_serve(ServeCommandOptions options);

}  // namespace tfm::cli
