#include "cli_runner.h"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include "io/atomic_file.h"
#include "test_support.h"

namespace tfm::test {

CliResult run_cli(const std::string& args, const std::string& input) {
  const std::string dir = temp_dir("cli");
  std::ofstream(dir + "/in") << input;
  const std::string command =
      std::string(TFM_CLI) + " " + args + " <" + dir + "/in >" + dir + "/out 2>" + dir + "/err";
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, io::read_file(dir + "/out"),
          io::read_file(dir + "/err")};
}

}  // namespace tfm::test
