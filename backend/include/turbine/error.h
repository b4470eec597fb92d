// error.h — how task functions fail.
//
// A task function fails by throwing (any exception, or TaskError via Fail()). The engine
// stores the message and a status code as the task's output: readers receive them, they
// are cached like a value and invalidated like one (unless transient, below). Reading a failed Vc
// inside a task rethrows TaskError with the same code, so an error propagates up the call graph
// unless a task catches it. Outside, Engine::Read returns it as an absl::Status, and a server
// answers with the same code (absl and gRPC codes are the same numbers).
//
// Codes: kUnknown for a function's own failure (any exception, and Fail() without a code);
// kFailedPrecondition for a dependency cycle (the engine's, or one a function detects and
// reports itself); any other code a function chooses with Fail(message, code). An error
// cannot be kOk, nor a number that is no status code: those fail with kUnknown (an OK
// error reaching a caller's absl::StatusOr would abort it).
// kUnavailable and kResourceExhausted are transient: a failure that may pass by itself (a
// service down, an I/O error, out of descriptors). The engine does not keep one: the task
// is invalidated a second after it failed, so its next read executes it again.
#pragma once

#include <absl/status/status.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace turbine {

class TaskError : public std::runtime_error {
 public:
  explicit TaskError(const std::string& message, absl::StatusCode code = absl::StatusCode::kUnknown)
      : std::runtime_error(message),
        message_(std::make_shared<const std::string>(message)),
        code_(AnErrorCode(code)) {}
  absl::StatusCode code() const { return code_; }
  // The whole message: what() ends at a NUL byte, which a key or a path may hold. Shared,
  // as runtime_error's own, so that copying the exception cannot throw.
  const std::string& message() const { return *message_; }

 private:
  static absl::StatusCode AnErrorCode(absl::StatusCode code) {
    const int number = static_cast<int>(code);
    return number >= 1 && number <= 16 ? code : absl::StatusCode::kUnknown;
  }

  std::shared_ptr<const std::string> message_;
  absl::StatusCode code_;
};

// Fail ends the current task function with `message` as its error output.
[[noreturn]] inline void Fail(const std::string& message,
                              absl::StatusCode code = absl::StatusCode::kUnknown) {
  throw TaskError(message, code);
}

}  // namespace turbine
