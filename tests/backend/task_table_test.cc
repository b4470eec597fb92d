// The task table (backend/src/task_table.h): ids are never reused, so a store that lives
// for months hands out ids in the hundreds of millions while a process holds a few of them,
// scattered. The table must take any of them, and walk only what it holds.
#include "task_table.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace turbine::internal {
namespace {

FunctionInfo NoArgs() {
  FunctionInfo fn;
  fn.name = "test.table";
  return fn;
}
const FunctionInfo kFunction = NoArgs();

std::unique_ptr<TaskState> NewTask(TaskId id) {
  return TaskState::Create(id, id, &kFunction, RawVc{}, nullptr);
}

// Far apart: one in the first leaf, one past the 2^28 the table once ended at, one near
// its end (2^44).
const std::vector<TaskId> kScattered = {5, 1023, 1024, (TaskId{1} << 28) + 3,
                                        (TaskId{1} << 39) + 1, TaskTable::kMaxIds - 1};

TEST(TaskTable, HoldsIdsFarApartAndRefusesIdsPastItsEnd) {
  Section section;
  TaskTable table;
  for (TaskId id : kScattered) ASSERT_TRUE(table.Put(id, NewTask(id))) << id;
  for (TaskId id : kScattered) {
    ASSERT_NE(table.Get(id), nullptr) << id;
    EXPECT_EQ(table.Get(id)->id, id);
  }
  EXPECT_EQ(table.Get(6), nullptr);
  EXPECT_EQ(table.Get((TaskId{1} << 28) + 4), nullptr);
  EXPECT_FALSE(table.Put(TaskTable::kMaxIds, NewTask(TaskTable::kMaxIds)));
  EXPECT_EQ(table.Get(TaskTable::kMaxIds), nullptr);
  std::unique_ptr<TaskState> removed = table.Remove((TaskId{1} << 39) + 1);
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->id, (TaskId{1} << 39) + 1);
  EXPECT_EQ(table.Get((TaskId{1} << 39) + 1), nullptr);
  EXPECT_EQ(table.Remove((TaskId{1} << 39) + 1), nullptr);
}

// The walks visit the tasks held, in id order, skipping the empty range between them
// (a walk id by id over 2^44 ids would never end).
TEST(TaskTable, WalksVisitWhatItHoldsInIdOrder) {
  Section section;
  TaskTable table;
  for (auto it = kScattered.rbegin(); it != kScattered.rend(); ++it) {
    ASSERT_TRUE(table.Put(*it, NewTask(*it)));
  }
  std::vector<TaskId> visited;
  table.ForEach([&](TaskId id, TaskState* task) {
    EXPECT_EQ(task->id, id);
    visited.push_back(id);
  });
  EXPECT_EQ(visited, kScattered);
  std::vector<TaskId> stepped;
  for (TaskId id = 1; TaskState* task = table.NextFrom(&id); ++id) {
    EXPECT_EQ(task->id, id);
    stepped.push_back(id);
  }
  EXPECT_EQ(stepped, kScattered);
  TaskId from = 1025;
  ASSERT_NE(table.NextFrom(&from), nullptr);
  EXPECT_EQ(from, (TaskId{1} << 28) + 3);
  from = TaskTable::kMaxIds;
  EXPECT_EQ(table.NextFrom(&from), nullptr);
}

}  // namespace
}  // namespace turbine::internal
