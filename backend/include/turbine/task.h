// task.h — Task<T>, the coroutine type every task function returns.
//
//   turbine::Task<int64_t> FibImpl(int64_t n) {
//     if (n < 2) co_return n;
//     auto a = fib(n - 1), b = fib(n - 2);     // Vc<int64_t>: looked up, not awaited
//     co_return (co_await a) + (co_await b);   // awaiting records the dependency
//   }
//
// A Task is started and driven only by the engine; user code never awaits a Task directly
// (it calls the registered Function, which returns a Vc). T is a plain value (stored as the
// task's output), or a Vc<U>/ResolvedVc<U> (the output is then a reference to that cell or
// output, and readers follow it).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace turbine {

namespace internal {

// PromiseBase is the part of a task's promise that the engine's driver sees.
struct PromiseBase {
  std::coroutine_handle<> continuation;  // the driver, resumed when the body finishes
  std::exception_ptr error;              // set if the body threw
};

struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
    // Symmetric transfer back to the driver: no stack growth between body and driver.
    std::coroutine_handle<> next = self.promise().continuation;
    return next ? next : std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

}  // namespace internal

template <class T>
class [[nodiscard]] Task {
 public:
  using value_type = T;

  struct promise_type : internal::PromiseBase {
    std::optional<T> result;

    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    internal::FinalAwaiter final_suspend() const noexcept { return {}; }
    template <class U>
    void return_value(U&& value) {
      result.emplace(std::forward<U>(value));
    }
    void unhandled_exception() { error = std::current_exception(); }
  };

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // Release hands the coroutine to the engine, which destroys it after it finishes.
  std::coroutine_handle<promise_type> Release() { return std::exchange(handle_, {}); }

 private:
  explicit Task(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace turbine
