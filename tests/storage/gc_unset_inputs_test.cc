// Garbage collection of inputs that were unset (turbine/gc.h), on a real RocksDB directory:
// an unset input is garbage once nothing stored reads it; a pass takes it out of memory and
// the next removes its record, unless it came back meanwhile.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

#include "gc_fixture.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace {

using turbine::GcOptions;
using turbine::GcReport;
using turbine::Input;
using turbine::TaskId;
using turbine::testing::gc::Collect;
using turbine::testing::gc::Daemon;
using turbine::testing::gc::Executions;
using turbine::testing::gc::executions;
using turbine::testing::gc::input_reader;
using turbine::testing::gc::leaf;
using turbine::testing::gc::Only;
using turbine::testing::gc::Removed;

// An unset input's record only keeps its id for what read it: with no reader left it is
// garbage. A pass takes it out of memory, and the next one removes its record (an id taken
// before the first may still name it). 250,000 set-then-unset keys stayed for good.
TEST(GarbageCollection, AnUnsetInputNothingReadsLeavesMemoryThenTheStore) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("kept", int64_t{3}).ok());
    ASSERT_TRUE(d.engine.SetInput("dropped", int64_t{4}).ok());
    const TaskId dropped = Input<int64_t>("dropped").raw().task;
    const TaskId kept = Input<int64_t>("kept").raw().task;
    ASSERT_TRUE(d.engine.Flush().ok());
    ASSERT_TRUE(d.engine.DeleteInputs({"dropped"}).ok());
    const int64_t tasks_before = d.engine.Stats().tasks;
    GcReport first = Collect(d.engine, GcOptions{});
    EXPECT_EQ(first.removed_tasks, 0u);
    EXPECT_EQ(d.engine.Stats().tasks, tasks_before - 1) << "it stayed in memory";
    // Its record is freed by the pass, with no evictor (no memory limit) to do it. Before,
    // every unset input a pass took out stayed allocated until the engine was destroyed.
    EXPECT_EQ(d.engine.Stats().evicted_unfreed_bytes, 0u);
    GcReport second = Collect(d.engine, GcOptions{});
    EXPECT_TRUE(Removed(second, dropped));
    EXPECT_FALSE(Removed(second, kept));
    EXPECT_EQ(second.removed_tasks, 1u);
    absl::StatusOr<int64_t> read = d.engine.Read(Input<int64_t>("dropped"));
    ASSERT_FALSE(read.ok());
    EXPECT_NE(read.status().message().find("is not set"), std::string::npos) << read.status();
    EXPECT_NE(Input<int64_t>("dropped").raw().task, dropped);  // a new task: ids are not reused
    ASSERT_TRUE(d.engine.SetInput("dropped", int64_t{5}).ok());  // and stored again
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(Input<int64_t>("kept")), 3);
  EXPECT_EQ(*d.engine.Read(Input<int64_t>("dropped")), 5);
}

// An unset input a stored task read stays until that reader goes, in the same pass.
TEST(GarbageCollection, AnUnsetInputStaysWhileAStoredTaskReadsIt) {
  turbine::testing::TempDir dir;
  TaskId input = 0;
  TaskId reader = 0;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{1}).ok());
    ASSERT_TRUE(d.engine.DeleteInputs({"base"}).ok());
    ASSERT_FALSE(d.engine.Read(leaf(0)).ok());  // reads it as not set
    input = Input<int64_t>("base").raw().task;
    reader = leaf(0).raw().task;
    ASSERT_TRUE(d.engine.Flush().ok());
    GcReport report = Collect(d.engine, GcOptions{});
    EXPECT_EQ(report.removed_tasks, 0u);
  }
  {
    Daemon d(dir.str());  // nothing in memory reads it now
    GcReport report = Collect(d.engine, Only({reader}));
    EXPECT_TRUE(Removed(report, reader));
    EXPECT_TRUE(Removed(report, input)) << "its last reader went, and it stayed";
  }
  Daemon d(dir.str());
  executions["leaf"] = 0;
  ASSERT_FALSE(d.engine.Read(leaf(0)).ok());
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{7}).ok());
  EXPECT_EQ(*d.engine.Read(leaf(0)), 7);
  EXPECT_EQ(Executions("leaf"), 2);
}

// An unset input out of memory is garbage for a pass, but one that comes back into memory
// before its batch keeps its record (an input in memory is always stored): read by a task
// there, or set again. One set again and evicted during the pass is kept with all that
// left memory meanwhile. Each keeps its id, which its readers name.
TEST(GarbageCollection, AnUnsetInputBackInMemoryDuringAPassIsKept) {
  turbine::testing::TempDir dir;
  std::map<std::string, TaskId> ids;
  {
    Daemon d(dir.str(), std::chrono::milliseconds(0));  // snapshots by the pass alone
    for (const char* key : {"read", "again", "again-evicted"}) {
      ASSERT_TRUE(d.engine.SetInput(key, int64_t{1}).ok());
      ids[key] = Input<int64_t>(key).raw().task;
    }
    ASSERT_TRUE(d.engine.DeleteInputs({"read", "again", "again-evicted"}).ok());
    const int64_t tasks_before = d.engine.Stats().tasks;
    ASSERT_EQ(Collect(d.engine, GcOptions{}).removed_tasks, 0u);  // out of memory
    ASSERT_EQ(d.engine.Stats().tasks, tasks_before - 3);
    // Between the next pass's scan and its decision: a task reads one, and the other two
    // are set again, one of them leaving memory after.
    bool done = false;
    GcOptions options{.also_collect = [&](TaskId) {
      if (!std::exchange(done, true)) {
        EXPECT_FALSE(d.engine.Read(input_reader("read")).ok());  // not set
        EXPECT_TRUE(d.engine.SetInput("again", int64_t{2}).ok());
        EXPECT_TRUE(d.engine.SetInput("again-evicted", int64_t{3}).ok());
        d.engine.EvictTasks(SIZE_MAX);  // the two set again ("read" has its reader)
        EXPECT_EQ(*d.engine.Read(Input<int64_t>("again")), 2);  // back in memory
      }
      return false;
    }};
    GcReport report = Collect(d.engine, options);
    EXPECT_TRUE(done);
    EXPECT_EQ(report.removed_tasks, 0u);
    ASSERT_TRUE(d.engine.Flush().ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(Input<int64_t>("again")), 2);
  EXPECT_EQ(*d.engine.Read(Input<int64_t>("again-evicted")), 3);
  for (const auto& [key, id] : ids) EXPECT_EQ(Input<int64_t>(key).raw().task, id) << key;
}

}  // namespace
