// Cycles: a task that (transitively) awaits itself gets an error, never a hang.
#include <gtest/gtest.h>

#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;

Task<int64_t> SelfImpl(int64_t n);
inline const turbine::Function<SelfImpl> self_loop{"test.cycle.self", 1};
Task<int64_t> SelfImpl(int64_t n) { co_return co_await self_loop(n); }

Task<int64_t> PingImpl(int64_t n);
Task<int64_t> PongImpl(int64_t n);
inline const turbine::Function<PingImpl> ping{"test.cycle.ping", 1};
inline const turbine::Function<PongImpl> pong{"test.cycle.pong", 1};
Task<int64_t> PingImpl(int64_t n) { co_return 1 + co_await pong(n); }
Task<int64_t> PongImpl(int64_t n) { co_return 1 + co_await ping(n); }

// A chain of `length` tasks whose last one reads the first: a long cycle.
Task<int64_t> RingImpl(int64_t index, int64_t length);
inline const turbine::Function<RingImpl> ring{"test.cycle.ring", 1};
Task<int64_t> RingImpl(int64_t index, int64_t length) {
  co_return 1 + co_await ring((index + 1) % length, length);
}

// Whether Gate reads itself through Latch depends on an input: the cycle can be broken.
Task<int64_t> GateImpl();
inline const turbine::Function<GateImpl> gate{"test.cycle.gate", 1};
Task<int64_t> LatchImpl() { co_return co_await gate(); }
inline const turbine::Function<LatchImpl> latch{"test.cycle.latch", 1};
Task<int64_t> GateImpl() {
  const int64_t closed = co_await Input<int64_t>("closed");
  if (closed != 0) co_return co_await latch();
  co_return 42;
}

// Whether Door reads itself through Hinge depends on an input. Read Door first and Hinge
// is the task that closes the cycle: its read of Door fails.
Task<int64_t> DoorImpl();
inline const turbine::Function<DoorImpl> door{"test.cycle.door", 1};
Task<int64_t> HingeImpl() { co_return 1 + co_await door(); }
inline const turbine::Function<HingeImpl> hinge{"test.cycle.hinge", 1};
Task<int64_t> DoorImpl() {
  const int64_t closed = co_await Input<int64_t>("door.closed");
  if (closed != 0) co_return co_await hinge();
  co_return 42;
}

TEST(Cycles, ATaskAwaitingItselfIsAnError) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> result = engine.Read(self_loop(1));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("cycle detected"), std::string::npos);
  EXPECT_NE(result.status().message().find("test.cycle.self"), std::string::npos);
}

TEST(Cycles, TwoTasksAwaitingEachOtherAreAnError) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> result = engine.Read(ping(1));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("cycle detected"), std::string::npos);
  EXPECT_GE(engine.Stats().cycles_detected, 1u);
}

TEST(Cycles, ALongCycleIsAnError) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> result = engine.Read(ring(0, 500));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("cycle detected"), std::string::npos);
}

TEST(Cycles, HealWhenAnInputBreaksThem) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("closed", int64_t{1}).ok());
  EXPECT_FALSE(engine.Read(gate()).ok());
  ASSERT_TRUE(engine.SetInput("closed", int64_t{0}).ok());
  EXPECT_EQ(*engine.Read(gate()), 42);
}

// The task whose read closed the cycle depends on the task it failed to read, so breaking
// the cycle elsewhere clears its error too.
TEST(Cycles, TheTaskThatClosedTheCycleHealsWhenItIsBroken) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("door.closed", int64_t{1}).ok());
  EXPECT_FALSE(engine.Read(door()).ok());
  EXPECT_FALSE(engine.Read(hinge()).ok());
  ASSERT_TRUE(engine.SetInput("door.closed", int64_t{0}).ok());
  EXPECT_EQ(*engine.Read(door()), 42);
  absl::StatusOr<int64_t> hinge_value = engine.Read(hinge());
  ASSERT_TRUE(hinge_value.ok()) << hinge_value.status();
  EXPECT_EQ(*hinge_value, 43);
}

// Cycle detection has no length limit: a cycle of 70,000 tasks (more than 2^16) is found,
// every task on it reports it, and breaking nothing leaves it reported on the next read.
TEST(Cycles, ACycleLongerThan65536TasksIsAnError) {
  turbine::Engine engine(turbine::EngineOptions{.worker_threads = 2});
  turbine::Engine::Scope scope(engine);
  constexpr int64_t kLength = 70'000;
  absl::StatusOr<int64_t> result = engine.Read(ring(0, kLength));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  absl::StatusOr<int64_t> middle = engine.Read(ring(kLength / 2, kLength));
  ASSERT_FALSE(middle.ok());
  EXPECT_EQ(middle.status().code(), absl::StatusCode::kFailedPrecondition) << middle.status();
}

}  // namespace
