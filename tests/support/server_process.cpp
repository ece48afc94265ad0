#include "server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

namespace tfm::test {

namespace {

double elapsed_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

ServerProcess::ServerProcess(const std::string& args, double timeout_s) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  const std::string command = "exec " + std::string(TFM_CLI) + " serve " + args + " --port 0";
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    close(out[0]), close(out[1]);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  const auto start = std::chrono::steady_clock::now();
  const std::string marker = "listening on http://127.0.0.1:";
  std::string text;
  char buffer[4096];
  while (port_ == 0) {
    pollfd p{out[0], POLLIN, 0};
    const double left = timeout_s - elapsed_since(start);
    if (left <= 0 || poll(&p, 1, int(left * 1000)) <= 0) break;
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, size_t(n));
    const size_t at = text.find(marker);
    if (at != std::string::npos && text.find('\n', at) != std::string::npos)
      port_ = std::stoi(text.substr(at + marker.size()));
  }
  // Whatever follows the ready line (the models) arrives right after it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, size_t(n));
  close(out[0]);
  banner_ = text;
  if (port_ == 0) {
    stop(5);
    throw std::runtime_error("tfm serve " + args + " did not get ready; it printed: " + text);
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int ServerProcess::stop(double timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (elapsed_since(start) > timeout_s) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace tfm::test
