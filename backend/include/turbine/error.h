// error.h — how task functions fail.
//
// A task function fails by throwing (any exception, or TaskError via Fail()). The engine
// stores the message as the task's output: readers receive it, it is cached like a value
// and invalidated like one. Reading a failed Vc inside a task rethrows TaskError, so an
// error propagates up the call graph unless a task catches it.
#pragma once

#include <stdexcept>
#include <string>

namespace turbine {

class TaskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Fail ends the current task function with `message` as its error output.
[[noreturn]] inline void Fail(const std::string& message) { throw TaskError(message); }

}  // namespace turbine
