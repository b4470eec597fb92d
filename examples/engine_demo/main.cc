// engine_demo — the engine in one screen: memoize, change an input, watch the cutoff.
//
// Prints what it does and how many task bodies ran at each step.
#include <cstdio>
#include <string>

#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;

Task<int64_t> FibImpl(int64_t n);
inline const turbine::Function<FibImpl> fib{"demo.fib", 1, "the n-th Fibonacci number"};
Task<int64_t> FibImpl(int64_t n) {
  if (n < 2) co_return n;
  auto a = fib(n - 1), b = fib(n - 2);  // looked up (or created), not yet awaited
  co_return (co_await a) + (co_await b);
}

Task<int64_t> ScaledImpl() {
  const int64_t n = co_await Input<int64_t>("n");
  co_return co_await fib(n % 50);  // only n % 50 matters: a cutoff point
}
inline const turbine::Function<ScaledImpl> scaled{"demo.scaled", 1};

Task<std::string> ReportImpl() {
  const int64_t value = co_await scaled();
  co_return "fib(n % 50) = " + std::to_string(value);
}
inline const turbine::Function<ReportImpl> report{"demo.report", 1};

void Step(turbine::Engine& engine, const char* what, turbine::Vc<std::string> vc) {
  const uint64_t before = engine.Stats().executions;
  absl::StatusOr<std::string> value = engine.Read(vc);
  std::printf("%-34s %-28s (%llu task bodies ran)\n", what,
              value.ok() ? value->c_str() : value.status().ToString().c_str(),
              static_cast<unsigned long long>(engine.Stats().executions - before));
}

}  // namespace

int main() {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);

  const uint64_t before = engine.Stats().executions;
  const int64_t fib90 = *engine.Read(fib(90));
  std::printf("%-34s %-28lld (%llu task bodies ran)\n", "fib(90), cold",
              static_cast<long long>(fib90),
              static_cast<unsigned long long>(engine.Stats().executions - before));

  (void)engine.SetInput("n", int64_t{40});  // in memory: cannot fail
  Step(engine, "report with n = 40", report());
  Step(engine, "report again (memoized)", report());
  (void)engine.SetInput("n", int64_t{90});
  Step(engine, "n = 90: 90 % 50 is 40, cut off", report());
  (void)engine.SetInput("n", int64_t{91});
  Step(engine, "n = 91: new value", report());

  const turbine::EngineStats stats = engine.Stats();
  std::printf("\nengine: %llu tasks, %llu dependency edges, revision %llu\n",
              static_cast<unsigned long long>(stats.tasks),
              static_cast<unsigned long long>(stats.edges),
              static_cast<unsigned long long>(stats.revision));
  return 0;
}
