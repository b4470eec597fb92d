// Restored = valid or dirty: a restart with nothing changed serves a restored task without
// verifying what it read, and never one that something changed under.
#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "input_summary.h"
#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/gc.h"
#include "turbine/why.h"

namespace {

using turbine::Input;
using turbine::Task;
using Daemon = turbine::testing::PersistedEngine<>;

// A node's sum: boxed on the heap, as a large result is (an int64 result is held in its
// task's record, where no eviction takes it), so that a node's value can be evicted and
// loaded back. Reads as the int64 it holds.
struct Sum {
  int64_t total = 0;
  std::string unused;                         // not trivially copyable
  operator int64_t() const { return total; }  // NOLINT: reads as its number
  bool operator==(const Sum&) const = default;
  static constexpr std::string_view kTypeName = "test.trust.Sum";
  static constexpr auto kFields =
      std::make_tuple(turbine::field("total", &Sum::total), turbine::field("unused", &Sum::unused));
};

// A cone: node(lo, n) sums leaves lo..lo+n-1, four children per node; leaf 0 is the input
// "bias", so one input reaches the root along one path.
Task<Sum> NodeImpl(int64_t lo, int64_t n);
inline const turbine::Function<NodeImpl> node{"test.trust.node", 1};
Task<Sum> NodeImpl(int64_t lo, int64_t n) {
  if (n == 1) {
    if (lo != 0) co_return Sum{lo, {}};
    const int64_t bias = co_await Input<int64_t>("bias");  // bound first: GCC 12
    co_return Sum{bias, {}};
  }
  const int64_t quarter = (n + 3) / 4;
  int64_t total = 0;
  for (int64_t start = lo; start < lo + n; start += quarter) {
    const Sum part = co_await node(start, std::min(quarter, lo + n - start));
    total += part;
  }
  co_return Sum{total, {}};
}

// A reader that no session executed before the restart: it registers with a trusted task.
Task<int64_t> PlusOneImpl(int64_t n) {
  const Sum sum = co_await node(0, n);
  co_return sum + 1;
}
inline const turbine::Function<PlusOneImpl> plus_one{"test.trust.plus_one", 1};

// The outside world, read by a session-dependent function.
std::atomic<int64_t> world{0};
Task<int64_t> ObserveImpl() { co_return world.load(); }
inline const turbine::Function<ObserveImpl> observe{
    "test.trust.observe", 1, "a value of the world", {.session_dependent = true}};
Task<int64_t> ObservedTwiceImpl() { co_return 2 * (co_await observe()); }
inline const turbine::Function<ObservedTwiceImpl> observed_twice{"test.trust.observed_twice", 1};

constexpr int64_t kLeaves = 64;
constexpr int64_t kSum = kLeaves * (kLeaves - 1) / 2;  // leaves 1..63; leaf 0 is the bias

// Refers to the root without reading it: a snapshot that writes it writes the root too, if
// the store lacks it.
Task<turbine::Vc<Sum>> RootRefImpl() { co_return node(0, kLeaves); }
inline const turbine::Function<RootRefImpl> root_ref{"test.trust.root_ref", 1};

// StoreTheCone is a first session: the input under leaf 0 set to 0, the cone computed, and
// everything stored when the session ends.
void StoreTheCone(const std::string& dir) {
  Daemon d(dir);
  ASSERT_TRUE(d.engine.SetInput("bias", int64_t{0}).ok());
  ASSERT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
}

TEST(TrustedRestore, ARestartWithNothingChangedLoadsOnlyWhatIsRead) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
  const turbine::EngineStats stats = d.engine.Stats();
  EXPECT_EQ(stats.executions, 0u);
  // The root alone: verifying it would have loaded the whole cone (85 tasks and the input).
  EXPECT_EQ(stats.restored_tasks, 1u);
  EXPECT_EQ(stats.trusted_restored_tasks, 1u);
}

// `why` of a trusted result says nothing it read was loaded, and loads nothing to say so:
// it loaded every dependency to look for early cutoffs, which a task restored from the
// store (never executed here) cannot show.
TEST(TrustedRestore, WhyOfATrustedResultLoadsNothingItRead) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
  absl::StatusOr<turbine::WhyReport> why = d.engine.Why(node(0, kLeaves).raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_FALSE(why->steps.empty());
  EXPECT_NE(why->steps[0].text.find("nothing it read was loaded"), std::string::npos)
      << why->steps[0].text;
  EXPECT_EQ(d.engine.Stats().restored_tasks, 1u) << "why loaded what the task read";
}

TEST(TrustedRestore, StaysTrustedAcrossIdleRestarts) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  for (int restart = 0; restart < 3; ++restart) {
    Daemon d(dir.str());
    EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
    EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u) << "restart " << restart;
  }
}

TEST(TrustedRestore, AnInputSetAfterTheLastSnapshotIsSeen) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  {
    Daemon d(dir.str());  // a session that only sets the input, then stops
    ASSERT_TRUE(d.engine.SetInput("bias", int64_t{1000}).ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum + 1000);
  // Only the path from the leaf to the root executed (the leaf, and 3 nodes above it).
  EXPECT_EQ(d.engine.Stats().executions, 4u);
  // Everything beside the path never read the input: trusted, and nothing below it loaded
  // (3 siblings at each of the path's 3 levels under the root; the cone has 85 tasks).
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 9u);
  EXPECT_EQ(d.engine.Stats().restored_tasks, 4u + 9u);
}

TEST(TrustedRestore, AChangeIsSeenAfterAnyNumberOfRestarts) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("bias", int64_t{0}).ok());
    ASSERT_TRUE(d.engine.SetInput("other", int64_t{0}).ok());
    ASSERT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
  }
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("bias", int64_t{5}).ok());
  }
  for (int idle = 0; idle < 2; ++idle) {
    Daemon d(dir.str());  // sessions that read nothing, one of which sets another input
    if (idle == 1) {
      ASSERT_TRUE(d.engine.SetInput("other", int64_t{1}).ok());
    }
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum + 5);
  EXPECT_EQ(d.engine.Stats().executions, 4u);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 9u);
}

TEST(TrustedRestore, AChangeOlderThanTheLogReachesIsAssumedToReachEverything) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  {
    // The change under the root, then more changes than the log keeps (4096), none of
    // which the root reads: the root's change falls out of the log.
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("bias", int64_t{1}).ok());
    std::vector<turbine::InputValue> others;
    for (int i = 0; i < 5000; ++i) {
      others.push_back(turbine::InputValue::Of("other" + std::to_string(i), int64_t{i}));
    }
    ASSERT_TRUE(d.engine.SetInputs(std::move(others)).ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum + 1);
  EXPECT_EQ(d.engine.Stats().executions, 4u);
}

TEST(TrustedRestore, AChangeInSessionLeavesWhatCannotReadItTrusted) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("bias", int64_t{0}).ok());
    ASSERT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
    ASSERT_EQ(*d.engine.Read(node(16, 16)), 16 * 16 + 16 * 15 / 2);
  }
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(node(16, 16)), 16 * 16 + 16 * 15 / 2);
  ASSERT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
  ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 2u);
  ASSERT_TRUE(d.engine.SetInput("bias", int64_t{3}).ok());
  // The root read the input, and verifies: its path executes, its other children
  // (node(16, 16) among them) are trusted or in memory already.
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum + 3);
  EXPECT_EQ(d.engine.Stats().executions, 4u);
  // node(16, 16) never read it: still trusted, nothing below it loaded.
  EXPECT_EQ(*d.engine.Read(node(16, 16)), 16 * 16 + 16 * 15 / 2);
  EXPECT_EQ(d.engine.Stats().executions, 4u);
  // The path (4) and the 3 siblings at each of its levels (9, node(16, 16) among them).
  EXPECT_EQ(d.engine.Stats().restored_tasks, 4u + 9u);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 9u + 1u);  // and the root, before
}

Task<int64_t> PlusOneOfImpl(std::string key) { co_return (co_await Input<int64_t>(key)) + 1; }
inline const turbine::Function<PlusOneOfImpl> plus_one_of{"test.trust.plus_one_of", 1};

// A change reaches a result whose summary has both its bits; one bit in common is chance.
TEST(TrustedRestore, AChangeSharingOneSummaryBitWithAResultLeavesItTrusted) {
  const std::string read = "read";
  const uint64_t read_bits = turbine::internal::InputBits(read);
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string key = "other-" + std::to_string(i);
    const uint64_t bits = turbine::internal::InputBits(key);
    if (std::popcount(bits) == 2 && std::popcount(bits & read_bits) == 1) other = key;
  }
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInputs({turbine::InputValue::Of(read, int64_t{1}),
                                    turbine::InputValue::Of(other, int64_t{1})})
                    .ok());
    ASSERT_EQ(*d.engine.Read(plus_one_of(read)), 2);
  }
  Daemon d(dir.str());
  ASSERT_TRUE(d.engine.SetInput(other, int64_t{5}).ok());
  EXPECT_EQ(*d.engine.Read(plus_one_of(read)), 2);
  // Before: the shared bit made it verify (loading the input it read).
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
  // Changing what it read reaches it.
  ASSERT_TRUE(d.engine.SetInput(read, int64_t{7}).ok());
  EXPECT_EQ(*d.engine.Read(plus_one_of(read)), 8);
}

// Gate reads "gate.j", and "gate.k" only while j is positive; with k = 1 its value is 1
// either way. Through reads it; Above reads Through.
std::string gate_k;  // a key whose summary bits are not j's (set by the test)
Task<int64_t> GateImpl() {
  const int64_t j = co_await Input<int64_t>("gate.j");
  if (j <= 0) co_return 1;
  co_return co_await Input<int64_t>(gate_k);
}
inline const turbine::Function<GateImpl> gate{"test.trust.gate", 1};
Task<int64_t> ThroughImpl() { co_return co_await gate(); }
inline const turbine::Function<ThroughImpl> through{"test.trust.through", 1};
Task<int64_t> AboveImpl() { co_return co_await through(); }
inline const turbine::Function<AboveImpl> above{"test.trust.above", 1};

// A restored task that verifies may read more than its record said: its dependency
// executed again and read another input, with the same value. A reader that took the
// record's summary must learn it, or a later change of that input never reaches it.
TEST(TrustedRestore, WhatAVerifiedRestoredTaskReadsAnewReachesItsReaders) {
  const uint64_t j_bits = turbine::internal::InputBits("gate.j");
  for (int i = 0; gate_k.empty(); ++i) {
    const std::string key = "gate.k" + std::to_string(i);
    if ((turbine::internal::InputBits(key) & j_bits) == 0) gate_k = key;
  }
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInputs({turbine::InputValue::Of("gate.j", int64_t{0}),
                                    turbine::InputValue::Of(gate_k, int64_t{1})})
                    .ok());
    ASSERT_EQ(*d.engine.Read(through()), 1);  // its record: it read gate.j only
  }
  {
    // No background snapshot: one between the two reads would store above() before the
    // change, and the next session would verify it for that change, hiding the hole.
    Daemon d(dir.str(), std::chrono::milliseconds(0));
    ASSERT_EQ(*d.engine.Read(above()), 1);  // executes, reading through(), trusted
    ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
    // gate executes again and reads gate.k too, with the same value: through verifies.
    ASSERT_TRUE(d.engine.SetInput("gate.j", int64_t{1}).ok());
    ASSERT_EQ(*d.engine.Read(above()), 1);
  }  // above is stored clean as of now
  Daemon d(dir.str());
  ASSERT_TRUE(d.engine.SetInput(gate_k, int64_t{5}).ok());
  EXPECT_EQ(*d.engine.Read(above()), 5);  // before: 1, trusted with the old summary
}

TEST(TrustedRestore, TheFirstInputChangeReachesTrustedTasksAndTheirReaders) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 1);  // reads the trusted root
  ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  ASSERT_TRUE(d.engine.SetInput("bias", int64_t{7}).ok());
  EXPECT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 7 + 1);
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum + 7);
  // The root, then the 3 siblings at each level of the path the change reached; not the
  // path: restored after the change, which may reach it, it was verified.
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u + 9u);
  ASSERT_TRUE(d.engine.SetInput("bias", int64_t{8}).ok());
  EXPECT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 8 + 1);
}

TEST(TrustedRestore, ATrustedTaskWhoseValuesWereReloadedKeepsWhatItRead) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  {
    // Values may be evicted (never in the background here); the root is written again in
    // this session (a collection removed its record while it was in memory, and a new task
    // refers to it), so its values are candidates.
    Daemon d(dir.str(), turbine::EngineOptions{
                            .worker_threads = 2,
                            .gc = {.interval = {}},
                            .memory = {.limit_bytes = 1,
                                       .large_value_bytes = 0,
                                       .interval = std::chrono::hours(1)}});
    ASSERT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
    ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
    const turbine::TaskId root = node(0, kLeaves).raw().task;
    ASSERT_TRUE(d.engine
                    .CollectGarbage(turbine::GcOptions{
                        .also_collect = [root](turbine::TaskId id) { return id == root; }})
                    .ok());
    ASSERT_TRUE(d.engine.Read(root_ref()).ok());
    ASSERT_TRUE(d.engine.Flush().ok());
    ASSERT_GT(d.engine.Evict(SIZE_MAX), 0u);
    ASSERT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);  // its values come back from disk
    ASSERT_GT(d.engine.Stats().reloaded_values, 0u);
    // A new reader of it is stored knowing that it reads "bias", through the root.
    ASSERT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 1);
  }
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("bias", int64_t{2}).ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 2 + 1);
  // In a session too: a change it cannot read, then two it reads, each reach it.
  ASSERT_TRUE(d.engine.SetInput("other", int64_t{1}).ok());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum + 2);
  ASSERT_TRUE(d.engine.SetInput("bias", int64_t{3}).ok());
  EXPECT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 3 + 1);
  ASSERT_TRUE(d.engine.SetInput("bias", int64_t{4}).ok());
  EXPECT_EQ(*d.engine.Read(plus_one(kLeaves)), kSum + 4 + 1);
}

TEST(TrustedRestore, WhatReadsTheOutsideWorldIsVerified) {
  turbine::testing::TempDir dir;
  world = 5;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(observed_twice()), 10);
  }
  world = 6;  // changed while no engine ran
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(observed_twice()), 12);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 0u);
}

TEST(TrustedRestore, AReaderOfTheOutsideWorldIsVerifiedEvenIfItsValueNeverChanged) {
  // observed_twice verifies unchanged after observe re-executes: its record is not
  // rewritten, and must not be trusted because of that.
  turbine::testing::TempDir dir;
  world = 3;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(observed_twice()), 6);
  }
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(observed_twice()), 6);
  }
  world = 4;
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(observed_twice()), 8);
}

Task<int64_t> ParityImpl() { co_return (co_await Input<int64_t>("parity.b")) % 2; }
inline const turbine::Function<ParityImpl> parity{"test.trust.parity", 1};
Task<int64_t> PlusParityImpl() {
  co_return (co_await Input<int64_t>("parity.a")) + (co_await parity());
}
inline const turbine::Function<PlusParityImpl> plus_parity{"test.trust.plus_parity", 1};

TEST(TrustedRestore, AResultVerifiedAfterALoggedChangeIsTrustedAtTheNextRestart) {
  // plus_parity verifies unchanged after a change of what parity reads (parity comes out
  // equal): stored again, it is clean as of that session and trusted at the next open,
  // instead of verifying at every restart while the log remembers the change.
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("parity.a", int64_t{10}).ok());
    ASSERT_TRUE(d.engine.SetInput("parity.b", int64_t{1}).ok());
    ASSERT_EQ(*d.engine.Read(plus_parity()), 11);
  }
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("parity.b", int64_t{3}).ok());
    ASSERT_EQ(*d.engine.Read(plus_parity()), 11);
    EXPECT_EQ(d.engine.Stats().executions, 1u);  // parity; plus_parity verified
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(plus_parity()), 11);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  EXPECT_EQ(d.engine.Stats().restored_tasks, 1u);  // nothing it read was loaded
}

Task<int64_t> LateImpl() { co_return 1; }

TEST(TrustedRestore, AnotherSetOfFunctionsVerifies) {
  // A build with other functions (or other versions of them) may compute something else
  // for what a record read, so none of its records is trusted.
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreTheCone(dir.str()));
  static const turbine::Function<LateImpl> late{"test.trust.late", 1};  // registered now
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(node(0, kLeaves)), kSum);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 0u);
  EXPECT_GT(d.engine.Stats().restored_tasks, 1u);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
}

// A restored task can be loaded by its id (a verification following a dependency of its
// reader) and created by its key (a call) at the same time: both must get the one task.
// The load by id refused the id when the call had created the task since it looked, and
// the verification then executed the reader for nothing ("no task with id").
std::atomic<int> verified_reader_runs{0};
Task<int64_t> VerifiedReaderImpl(int64_t i) {
  ++verified_reader_runs;
  co_return co_await Input<int64_t>("race/" + std::to_string(i));
}
inline const turbine::Function<VerifiedReaderImpl> verified_reader{"test.trust.verified_reader",
                                                                   1};
Task<int64_t> NewReaderImpl(int64_t i) {
  co_return co_await Input<int64_t>("race/" + std::to_string(i));
}
inline const turbine::Function<NewReaderImpl> new_reader{"test.trust.new_reader", 1};

TEST(TrustedRestore, ATaskLoadedByIdAndCreatedByKeyAtOnceIsOneTask) {
  constexpr int64_t kInputs = 2000;
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    for (int64_t i = 0; i < kInputs; ++i) {
      ASSERT_TRUE(d.engine.SetInput("race/" + std::to_string(i), i).ok());
      ASSERT_EQ(*d.engine.Read(verified_reader(i)), i);
    }
    ASSERT_TRUE(d.engine.Flush().ok());
    // An input set after the readers were written: they are verified after the restart.
    ASSERT_TRUE(d.engine.SetInput("race/other", int64_t{1}).ok());
  }
  verified_reader_runs = 0;
  Daemon d(dir.str());
  std::atomic<int64_t> wrong{0};
  // Both threads start on input i together (a spin barrier), so that the two ways to the
  // same task overlap as often as they can.
  std::atomic<int64_t> arrived{0};
  auto start_together = [&](int64_t i) {
    ++arrived;
    while (arrived.load() < 2 * (i + 1)) {
    }
  };
  std::thread by_key([&] {
    turbine::Engine::Scope scope(d.engine);
    for (int64_t i = 0; i < kInputs; ++i) {
      start_together(i);
      wrong += *d.engine.Read(new_reader(i)) != i;
    }
  });
  for (int64_t i = 0; i < kInputs; ++i) {
    start_together(i);
    wrong += *d.engine.Read(verified_reader(i)) != i;
  }
  by_key.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(verified_reader_runs.load(), 0) << "readers executed though nothing they read changed";
}

}  // namespace
