// `tfm serve` run by a test as a user runs it: started on a free loopback port (--port 0; the port is read
// from its ready line), driven over HTTP, and stopped with SIGTERM.
#pragma once

#include <sys/types.h>

#include <string>

namespace tfm::test {

class ServerProcess {
 public:
  // Starts `tfm serve ARGS --port 0` and waits (at most `timeout_s`) for its "listening on" line.
  explicit ServerProcess(const std::string& args, double timeout_s = 120);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Everything the server printed on stdout (its ready line and the models).
  const std::string& banner() const { return banner_; }
  // Sends SIGTERM and waits (at most timeout_s) for the exit; returns the exit status, -1 when the process
  // did not exit normally or in time (it is then killed).
  int stop(double timeout_s = 60);

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string banner_;
};

}  // namespace tfm::test
