// Running the tfm binary (TFM_CLI, defined by the e2e target) from a test.
#pragma once

#include <string>

namespace tfm::test {

struct CliResult {
  int code = -1;  // the exit status; -1 when the process did not exit normally
  std::string out, err;
};

// Runs `tfm args` (a shell-quoted string) with `input` on stdin, and collects stdout and stderr.
CliResult run_cli(const std::string& args, const std::string& input = "");

}  // namespace tfm::test
