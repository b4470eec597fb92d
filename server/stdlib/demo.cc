// demo.cc — the functions every turbined serves from the start: demo.fib, demo.busy (the
// benchmark body), demo.steps (a long call) and input.get (inputs set with SetInputs).
#include <chrono>
#include <cstdint>
#include <string>

#include "turbine/engine.h"
#include "turbine/server/export.h"
#include "turbine/server/wire_value.h"

namespace turbine::stdlib {
namespace {

Task<int64_t> FibImpl(int64_t n);
const Function<FibImpl> fib{"demo.fib", 1, "the n-th Fibonacci number, one task per n"};
Task<int64_t> FibImpl(int64_t n) {
  if (n < 0) Fail("demo.fib: n must be >= 0, got " + std::to_string(n));
  if (n > 92) Fail("demo.fib: n must be <= 92 (fib(93) overflows int64)");
  if (n < 2) co_return n;
  Vc<int64_t> a = fib(n - 1);
  Vc<int64_t> b = fib(n - 2);
  const int64_t first = co_await a;
  const int64_t second = co_await b;
  co_return first + second;
}
const server::Export export_fib{fib, {"n"}};

// BusyImpl spins for `micros` microseconds: the task body of the benchmarks, with a key so
// that distinct calls are distinct tasks. It stops early once nobody waits for it.
Task<int64_t> BusyImpl(int64_t key, int64_t micros) {
  if (micros < 0 || micros > 10'000'000) Fail("demo.busy: micros must be in [0, 10000000]");
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  while (std::chrono::steady_clock::now() < until) ThrowIfCancelled();
  co_return key;
}
const Function<BusyImpl> busy{"demo.busy", 1, "spins for `micros` microseconds, returns key"};
const server::Export export_busy{busy, {"key", "micros"}};

// StepsImpl runs demo.busy(0, micros) ... demo.busy(n - 1, micros) one after another: a long
// call made of many short tasks, which the CLI shows progress for and lets run past its
// deadline while they keep finishing.
Task<int64_t> StepsImpl(int64_t n, int64_t micros) {
  if (n < 0 || n > 1'000'000) Fail("demo.steps: n must be in [0, 1000000]");
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += co_await busy(i, micros);
  co_return sum;
}
const Function<StepsImpl> steps{"demo.steps", 1,
                                "runs demo.busy(i, micros) for i < n in turn; returns their sum"};
const server::Export export_steps{steps, {"n", "micros"}};

Task<WireValue> InputGetImpl(std::string key) { co_return co_await Input<WireValue>(key); }
const Function<InputGetImpl> input_get{"input.get", 1, "the value of an input set with `set`"};
const server::Export export_input_get{input_get, {"key"}};

}  // namespace
}  // namespace turbine::stdlib
