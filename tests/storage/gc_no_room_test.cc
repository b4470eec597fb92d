// A garbage collection pass on a disk with no room for the results in memory (a tmpfs; needs
// root, skipped otherwise): it does not write them into the reserve, which is what it
// needs to delete with; they stay in memory, keep what they refer to from the pass, and
// are written once the pass (or the user) has freed space.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "gc_fixture.h"
#include "small_disk.h"
#include "turbine/engine.h"

namespace {

using turbine::GcReport;
using turbine::Task;
using turbine::TaskId;
using turbine::Vc;
using turbine::testing::LogBytes;
using turbine::testing::SmallDisk;
using turbine::testing::gc::Daemon;
using turbine::testing::gc::leaf;
using turbine::testing::gc::Only;
using turbine::testing::gc::Removed;

// Alias(n) refers to leaf(n) in its value: a task of its own, stored by no earlier test.
Task<Vc<int64_t>> AliasImpl(int64_t n) { co_return leaf(n); }
const turbine::Function<AliasImpl> alias{"test.gc_no_room.alias", 1};

// Payload(n): 64 KiB that do not compress.
Task<std::string> PayloadImpl(int64_t n) {
  co_return turbine::testing::Incompressible(n, 64 << 10);
}
const turbine::Function<PayloadImpl> payload{"test.gc_no_room.payload", 1};

constexpr size_t kMiB = size_t{1} << 20;

// 3 MiB of results in memory with 1 MiB free: the pass goes on and removes its garbage.
// Before, it wrote them into the reserve first, which failed for lack of space
// (kResourceExhausted), and so did every pass after: nothing could free the disk.
TEST(GarbageCollection, APassGoesOnWhenTheDiskHasNoRoomForTheResultsInMemory) {
  SmallDisk disk(32 * kMiB);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  Daemon d((disk.path() / "data").string(), /*snapshot_interval=*/std::chrono::milliseconds(0));
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
  ASSERT_EQ(*d.engine.Read(leaf(7)), 17);
  const TaskId leaf_id = leaf(7).raw().task;
  ASSERT_TRUE(d.engine.Flush().ok());
  ASSERT_TRUE(disk.LeaveFree(kMiB));
  for (int64_t n = 0; n < 48; ++n) ASSERT_EQ(d.engine.Read(payload(n))->size(), 64u << 10);

  absl::StatusOr<GcReport> report = d.engine.CollectGarbage(Only({leaf_id}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(Removed(*report, leaf_id));
  EXPECT_TRUE(d.engine.SetInput("after", int64_t{1}).ok()) << "the pass stopped the writes";

  disk.Free("ballast");
  const absl::Status flushed = d.engine.Flush();
  EXPECT_TRUE(flushed.ok()) << flushed;
  d.engine.EvictTasks(SIZE_MAX);
  for (int64_t n = 0; n < 48; ++n) EXPECT_EQ(d.engine.Read(payload(n))->size(), 64u << 10);
  EXPECT_EQ(*d.engine.Read(leaf(7)), 17);
}

// A result the disk has no room for keeps what it refers to: alias(5), in memory only,
// refers to leaf(5), on disk only, which the pass is told is garbage. A pass that removed
// leaf(5) and left alias(5) as it is would leave it pointing at nothing.
TEST(GarbageCollection, AResultTheDiskHasNoRoomForKeepsWhatItRefersTo) {
  SmallDisk disk(32 * kMiB);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  Daemon d((disk.path() / "data").string(), /*snapshot_interval=*/std::chrono::milliseconds(0));
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
  ASSERT_EQ(*d.engine.Read(leaf(5)), 15);
  const TaskId leaf_id = leaf(5).raw().task;
  ASSERT_TRUE(d.engine.Flush().ok());
  ASSERT_TRUE(disk.LeaveFree(kMiB));
  ASSERT_EQ(*d.engine.Read(alias(5)), 15);
  const absl::Status refused = d.engine.Flush();
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  d.engine.EvictTasks(SIZE_MAX);  // leaf(5) leaves memory; alias(5), never written, stays

  absl::StatusOr<GcReport> report = d.engine.CollectGarbage(Only({leaf_id}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(Removed(*report, leaf_id)) << "alias(5), in memory only, refers to it";
  absl::StatusOr<int64_t> read = d.engine.Read(alias(5));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);

  disk.Free("ballast");
  ASSERT_TRUE(d.engine.Flush().ok());
  d.engine.EvictTasks(SIZE_MAX);
  read = d.engine.Read(alias(5));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
}

}  // namespace

// A pass that deletes many tasks on a disk with less free space than the log of their
// deletions would take (4 MiB free, 100,000 deletions): it writes the deletions into table
// files as it goes, so their log stays a fraction of the free space. Before, the log grew
// until the disk was full (4.5 MB when it failed) and the pass failed having freed nothing.
// The pass may still be refused on the way: RocksDB's compactions of those files take
// space for a moment, which is not counted (README), so on a machine under load it
// sometimes fails RESOURCE_EXHAUSTED; then, once the space is freed, the next pass ends it.
TEST(GarbageCollection, APassWritesItsDeletionsOutBeforeTheirLogFillsTheDisk) {
  SmallDisk disk(32 * kMiB);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::filesystem::path data = disk.path() / "data";
  Daemon d(data.string(), /*snapshot_interval=*/std::chrono::milliseconds(0));
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
  constexpr int64_t kTasks = 100'000;
  std::set<TaskId> all;
  for (int64_t n = 0; n < kTasks; ++n) {
    ASSERT_EQ(*d.engine.Read(leaf(n)), n);
    all.insert(leaf(n).raw().task);
  }
  ASSERT_TRUE(d.engine.Flush().ok());
  d.engine.EvictTasks(SIZE_MAX);
  ASSERT_TRUE(d.backing().Settle(0).ok());  // as an idle daemon does
  ASSERT_TRUE(disk.LeaveFree(4 * kMiB));

  absl::StatusOr<GcReport> report = d.engine.CollectGarbage(Only(all));
  EXPECT_LE(LogBytes(data), 2 * kMiB) << "the deletions stayed in the log";
  if (!report.ok()) {
    EXPECT_EQ(report.status().code(), absl::StatusCode::kResourceExhausted) << report.status();
    disk.Free("ballast");
    report = d.engine.CollectGarbage(Only(all));
    ASSERT_TRUE(report.ok()) << report.status();
  }
  EXPECT_TRUE(d.engine.SetInput("after", int64_t{1}).ok()) << "the pass stopped the writes";
}
