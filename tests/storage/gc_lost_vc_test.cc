// A result restored from the store that holds a Vc (in a vector here) of a task the store
// no longer has: a pass removed it while the holder was not stored yet, or a later build
// bumped the function's version. Its holders execute again when a reader finds the task
// gone, up to where the Vc came from, and the reader gets the right answer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gc_fixture.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;
using turbine::TaskId;
using turbine::Vc;
using turbine::testing::gc::Count;
using turbine::testing::gc::Daemon;
using turbine::testing::gc::Executions;
using turbine::testing::gc::leaf;

// HoldLeaf10 returns a value holding a Vc of Leaf(10), without reading it.
Task<std::vector<Vc<int64_t>>> HoldLeaf10Impl() {
  Count("hold_leaf10");
  co_return std::vector<Vc<int64_t>>{leaf(10)};
}
const turbine::Function<HoldLeaf10Impl> hold_leaf10{"test.gc.hold_leaf10", 1};

// UseHeld reads the Vc HoldLeaf10 holds, plus input "salt".
Task<int64_t> UseHeldImpl() {
  const std::vector<Vc<int64_t>> held = co_await hold_leaf10();
  co_return (co_await held[0]) + (co_await Input<int64_t>("salt"));
}
const turbine::Function<UseHeldImpl> use_held{"test.gc.use_held", 1};

// HoldCopy returns the value HoldLeaf10 returns: a copy of its Vc, one step further.
Task<std::vector<Vc<int64_t>>> HoldCopyImpl() { co_return co_await hold_leaf10(); }
const turbine::Function<HoldCopyImpl> hold_copy{"test.gc.hold_copy", 1};

Task<int64_t> UseCopyImpl() {
  const std::vector<Vc<int64_t>> held = co_await hold_copy();
  co_return (co_await held[0]) + (co_await Input<int64_t>("salt"));
}
const turbine::Function<UseCopyImpl> use_copy{"test.gc.use_copy", 1};

// StoreThenLoseLeaf10 is a first session that reads `use` (10, with "base" and "salt" 0),
// then a second one on the same store, whose record of Leaf(10) is deleted. Returns the
// result of reading `use` there after "salt" is set to `salt` (the reader executes again).
template <class Use>
absl::StatusOr<int64_t> StoreThenLoseLeaf10(const std::string& dir, const Use& use,
                                            int64_t salt) {
  TaskId leaf_id = 0;
  {
    Daemon d(dir);
    EXPECT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
    EXPECT_TRUE(d.engine.SetInput("salt", int64_t{0}).ok());
    EXPECT_EQ(*d.engine.Read(use()), 10);
    leaf_id = leaf(10).raw().task;
  }
  Daemon d(dir);
  EXPECT_TRUE(d.owner->backing_store().DeleteTasks({leaf_id}).ok());
  EXPECT_TRUE(d.engine.SetInput("salt", salt).ok());
  return d.engine.Read(use());
}

// Before: the reader failed with "no task with id N" for good, and cached that error; the
// holder, clean, kept handing out the same Vc.
TEST(GarbageCollection, AStoredValueHoldingAVcOfARemovedTaskIsComputedAgain) {
  turbine::testing::TempDir dir;
  const int holds = Executions("hold_leaf10");
  absl::StatusOr<int64_t> used = StoreThenLoseLeaf10(dir.str(), use_held, 1);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, 11);
  EXPECT_EQ(Executions("hold_leaf10"), holds + 2);  // once in each session
}

// The same, when the holder copied the Vc out of a value it read: what it read executes
// again too, or the holder would copy the same Vc again.
TEST(GarbageCollection, AVcCopiedFromHolderToHolderIsComputedAgainAtItsSource) {
  turbine::testing::TempDir dir;
  absl::StatusOr<int64_t> used = StoreThenLoseLeaf10(dir.str(), use_copy, 2);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, 12);
}

}  // namespace
