// Zero allocations on a cache hit: the call path of docs/ARCHITECTURE.md, measured.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "alloc_counter.h"
#include "read_now.h"
#include "turbine/engine.h"

namespace {

using turbine::testing::ThreadAllocations;

turbine::Task<int64_t> ScaleImpl(int64_t x, std::string label) {
  co_return x* static_cast<int64_t>(label.size());
}
inline const turbine::Function<ScaleImpl> scale{"test.alloc.scale", 1};

// Allocations counted around each cached call + await inside a task body, which also
// records a new dependency edge every time.
std::atomic<uint64_t> allocations_inside_task{~0ull};

turbine::Task<int64_t> ReadFourCachedImpl(int64_t base) {
  int64_t total = 0;
  uint64_t allocations = 0;
  for (int64_t i = 0; i < 4; ++i) {
    const uint64_t before = ThreadAllocations();
    total += co_await scale(base + i, std::string("abc"));
    allocations += ThreadAllocations() - before;
  }
  allocations_inside_task = allocations;
  co_return total;
}
inline const turbine::Function<ReadFourCachedImpl> read_four_cached{"test.alloc.read_four", 1};

TEST(ZeroAllocation, CachedCallFromOutsideAllocatesNothing) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_EQ(*engine.Read(scale(7, std::string("abcd"))), 28);  // miss: creates and runs

  const uint64_t before = ThreadAllocations();
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<int64_t> hit = engine.Read(scale(7, std::string("abcd")));
    ASSERT_TRUE(hit.ok());
    ASSERT_EQ(*hit, 28);
  }
  EXPECT_EQ(ThreadAllocations() - before, 0u);
}

TEST(ZeroAllocation, CachedCallInsideTaskRecordsEdgeWithoutAllocating) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  for (int64_t i = 0; i < 4; ++i) ASSERT_TRUE(engine.Read(scale(100 + i, std::string("abc"))).ok());

  ASSERT_EQ(*engine.Read(read_four_cached(100)), (100 + 101 + 102 + 103) * 3);
  EXPECT_EQ(allocations_inside_task.load(), 0u);
  // The edges were recorded: the reader depends on all four.
  EXPECT_GE(engine.Stats().edges, 4u);
}

TEST(ZeroAllocation, ACachedCallByHandleAllocatesNothing) {
  // The server's path: Engine::Call on an explicit engine, no thread-local engine.
  turbine::Engine engine;
  std::tuple<int64_t, std::string> args{5, "abcd"};
  turbine::CallSource source = turbine::CallSource::kCreated;
  absl::StatusOr<turbine::RawVc> first = engine.Call(scale.handle(), turbine::RawVc{}, args);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(turbine::testing::ReadNow(engine, *first).status.ok());

  const uint64_t before = ThreadAllocations();
  for (int i = 0; i < 1000; ++i) {
    std::tuple<int64_t, std::string> again{5, "abcd"};  // short: inline string storage
    absl::StatusOr<turbine::RawVc> hit =
        engine.Call(scale.handle(), turbine::RawVc{}, again, &source);
    ASSERT_TRUE(hit.ok());
    ASSERT_EQ(*hit, *first);
    ASSERT_EQ(source, turbine::CallSource::kMemory);
  }
  EXPECT_EQ(ThreadAllocations() - before, 0u);
}

TEST(ZeroAllocation, AMissAllocates) {
  // The counter itself works: a miss must allocate (task record, boxed arguments).
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  const uint64_t before = ThreadAllocations();
  ASSERT_TRUE(engine.Read(scale(9, std::string("x"))).ok());
  EXPECT_GT(ThreadAllocations() - before, 0u);
}

}  // namespace
