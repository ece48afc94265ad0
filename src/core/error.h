// One exception type for every user-facing failure. It carries a context chain, outermost first:
//   "loading mt-en-es/model.safetensors: tensor 'fc1.weight': shape [1024, 256] expected [1024, 512]"
// The CLI prints what() and exits non-zero. Never assert on user input: throw tfm::Error.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace tfm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
  // Returns a copy of this error with `context` prepended ("context: message").
  Error with_context(const std::string& context) const { return Error(context + ": " + what()); }
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// Runs fn(); any tfm::Error escaping it gets `context` prepended.
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw e.with_context(context);
  }
}

}  // namespace tfm

// Internal invariant (programming error, not user input): reports file and line.
#define TFM_CHECK(cond, ...)                                                                              \
  do {                                                                                                    \
    if (!(cond))                                                                                          \
      throw ::tfm::Error(fmt::format("internal check failed at {}:{}: {}: {}", __FILE__, __LINE__, #cond, \
                                     fmt::format(__VA_ARGS__)));                                          \
  } while (0)
