// Garbage collection and the inputs that are set (turbine/gc.h), on a real RocksDB
// directory: an input is the user's data, never collected, and so is what its value refers
// to (a Vc inside it), transitively, even over the disk limit and even when the input was
// set during the pass.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gc_fixture.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace {

using turbine::GcOptions;
using turbine::GcReport;
using turbine::Input;
using turbine::TaskId;
using turbine::Vc;
using turbine::testing::gc::Collect;
using turbine::testing::gc::Daemon;
using turbine::testing::gc::Executions;
using turbine::testing::gc::forward;
using turbine::testing::gc::leaf;
using turbine::testing::gc::Removed;
using turbine::testing::gc::StoreForward5;
using turbine::testing::gc::sum;

// An input set to a value holding a Vc refers to that Vc's task: the task is the user's
// data as much as the input is, so no pass removes it (or what it refers to), even over the
// disk limit; removed, it left the input naming a task that existed nowhere.
TEST(GarbageCollection, WhatASetInputRefersToIsNeverCollected) {
  turbine::testing::TempDir dir;
  TaskId leaf_id = 0;
  TaskId forward_id = 0;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
    ASSERT_EQ(*d.engine.Read(forward(5)), 15);
    ASSERT_EQ(*d.engine.Read(sum(0)), 21);
    leaf_id = leaf(5).raw().task;
    forward_id = forward(5).raw().task;
    ASSERT_TRUE(d.engine.SetInput("held", std::vector<Vc<int64_t>>{forward(5)}).ok());
  }
  {
    Daemon d(dir.str());
    GcReport report = Collect(d.engine, GcOptions{.disk_limit = 1});  // everything it can
    EXPECT_FALSE(Removed(report, forward_id));
    EXPECT_FALSE(Removed(report, leaf_id));  // forward(5) refers to it
    EXPECT_EQ(report.removed_tasks, 3u);     // sum(0), leaf(0), leaf(1)
  }
  Daemon d(dir.str());
  absl::StatusOr<std::vector<Vc<int64_t>>> held =
      d.engine.Read(Input<std::vector<Vc<int64_t>>>("held"));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].raw().task, forward_id);
  const int leaves_before = Executions("leaf");
  absl::StatusOr<int64_t> read = d.engine.Read((*held)[0]);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
  EXPECT_EQ(Executions("leaf"), leaves_before);  // from the store
}

// An input set during a pass, after its scan, to a task the pass found to be garbage keeps
// that task and what it refers to: the scan never saw the input. Before, both were deleted
// and the input named nothing after a restart.
TEST(GarbageCollection, AnInputSetDuringAPassKeepsWhatItRefersTo) {
  turbine::testing::TempDir dir;
  TaskId forward_id = 0;
  TaskId leaf_id = 0;
  StoreForward5(dir.str(), &leaf_id, &forward_id);
  {
    Daemon d(dir.str());
    bool set = false;
    absl::Status set_status;
    // Asked after the scan, before anything is deleted: everything stored is garbage then.
    GcReport report = Collect(d.engine, GcOptions{.disk_limit = 1, .also_collect = [&](TaskId) {
      if (!set) {
        set = true;
        set_status = d.engine.SetInput("held", std::vector<Vc<int64_t>>{forward(5)});
      }
      return false;
    }});
    ASSERT_TRUE(set);
    ASSERT_TRUE(set_status.ok()) << set_status;
    EXPECT_FALSE(Removed(report, forward_id));
    EXPECT_FALSE(Removed(report, leaf_id));
  }
  Daemon d(dir.str());
  absl::StatusOr<std::vector<Vc<int64_t>>> held =
      d.engine.Read(Input<std::vector<Vc<int64_t>>>("held"));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].raw().task, forward_id);
  absl::StatusOr<int64_t> read = d.engine.Read((*held)[0]);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
}

// A set input whose value names a task the store does not hold (a process killed before a
// snapshot wrote the task) is kept like any set input: its reference fails when used, but
// the input is the user's. Taken for unusable, it was removed.
TEST(GarbageCollection, ASetInputNamingATaskThatIsNotStoredIsKept) {
  turbine::testing::TempDir dir;
  TaskId forward_id = 0;
  TaskId input_id = 0;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
    ASSERT_EQ(*d.engine.Read(forward(5)), 15);
    forward_id = forward(5).raw().task;
    ASSERT_TRUE(d.engine.SetInput("held", std::vector<Vc<int64_t>>{forward(5)}).ok());
    input_id = Input<std::vector<Vc<int64_t>>>("held").raw().task;
  }
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.backing().DeleteTasks({forward_id}).ok());
  }
  {
    Daemon d(dir.str());
    GcReport report = Collect(d.engine, GcOptions{});
    EXPECT_FALSE(Removed(report, input_id));
    EXPECT_EQ(report.unusable, 0u);
  }
  Daemon d(dir.str());
  absl::StatusOr<std::vector<Vc<int64_t>>> held =
      d.engine.Read(Input<std::vector<Vc<int64_t>>>("held"));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(Input<std::vector<Vc<int64_t>>>("held").raw().task, input_id);
}

TEST(GarbageCollection, InputsAreNeverCollected) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{7}).ok());
    ASSERT_EQ(*d.engine.Read(sum(0)), 15);
    GcReport report = Collect(d.engine, GcOptions{.disk_limit = 1});  // everything it can
    EXPECT_EQ(report.removed_tasks, 3u);  // Sum(0), Leaf(0), Leaf(1); not the input
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(Input<int64_t>("base")), 7);
  EXPECT_EQ(*d.engine.Read(sum(0)), 15);
}

}  // namespace
