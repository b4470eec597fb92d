// Damaged task records (what the record_fuzz target feeds the decoders, here end to end): a
// record the engine cannot trust is computed afresh, never served and never a crash.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"

namespace {

using turbine::StoredTask;
using turbine::Task;
using turbine::storage::RocksBackingStore;

Task<std::string> GreetImpl(int64_t n) { co_return "hello " + std::to_string(n); }
inline const turbine::Function<GreetImpl> greet{"test.damaged.greet", 1};

Task<std::string> NamedImpl(int64_t n) {
  co_return (co_await turbine::Input<std::string>("damaged.name")) + std::to_string(n);
}
inline const turbine::Function<NamedImpl> named{"test.damaged.named", 1};
Task<std::string> BothImpl() { co_return (co_await named(1)) + "," + (co_await named(2)); }
inline const turbine::Function<BothImpl> both{"test.damaged.both", 1};

// DamagingStore hands the engine every task record as `damage` leaves it, as if the bytes
// had been damaged on disk. A restored result that read an input is verified
// (VerifyingStore), so its dependencies are read by id, in batches.
class DamagingStore : public turbine::testing::VerifyingStore {
 public:
  using VerifyingStore::VerifyingStore;
  static inline std::function<void(StoredTask&)> damage;
  static inline int batches = 0;

  absl::StatusOr<std::optional<StoredTask>> FindTask(uint64_t hash,
                                                     std::string_view identity) override {
    return Damaged(RocksBackingStore::FindTask(hash, identity));
  }
  absl::StatusOr<std::optional<StoredTask>> ReadTask(uint64_t id) override {
    return Damaged(RocksBackingStore::ReadTask(id));
  }
  std::vector<absl::StatusOr<std::optional<StoredTask>>> ReadTasks(
      const std::vector<uint64_t>& ids) override {
    ++batches;
    std::vector<absl::StatusOr<std::optional<StoredTask>>> tasks = RocksBackingStore::ReadTasks(ids);
    for (auto& task : tasks) task = Damaged(std::move(task));
    return tasks;
  }

 private:
  static absl::StatusOr<std::optional<StoredTask>> Damaged(
      absl::StatusOr<std::optional<StoredTask>> task) {
    if (task.ok() && task->has_value() && damage) damage(**task);
    return task;
  }
};

// StoreThenReadDamaged computes greet(7) in one session, then reads it in a second one
// whose records are damaged.
void StoreThenReadDamaged(std::function<void(StoredTask&)> damage) {
  turbine::testing::TempDir dir;
  {
    turbine::testing::PersistedEngine<> d(dir.str());
    ASSERT_EQ(*d.engine.Read(greet(7)), "hello 7");
  }
  DamagingStore::damage = std::move(damage);
  {
    turbine::testing::PersistedEngine<DamagingStore> d(dir.str());
    EXPECT_EQ(*d.engine.Read(greet(7)), "hello 7");
    // Made afresh: a miss, and nothing restored. Before, a record found and then not used
    // counted as a hit from disk.
    EXPECT_EQ(d.engine.Stats().restored_tasks, 0u);
    for (const turbine::FunctionStats& fn : d.engine.Stats().functions) {
      if (fn.name == "test.damaged.greet") {
        EXPECT_EQ(fn.cache_hits, 0u);
      }
    }
    EXPECT_EQ(*d.engine.Read(greet(8)), "hello 8");  // a new task gets an id of its own
    EXPECT_EQ(*d.engine.Read(greet(7)), "hello 7");
  }
  DamagingStore::damage = nullptr;
}

TEST(DamagedRecords, AnIdBeyondTheTaskTableIsComputedAfresh) {
  // Before: the engine aborted ("task id space exhausted").
  StoreThenReadDamaged([](StoredTask& task) { task.id = uint64_t{1} << 40; });
}

TEST(DamagedRecords, AnIdNeverGivenOutIsComputedAfresh) {
  // greet(7) was the only task (id 1): id 2 is the one the counter gives out next. Before:
  // greet(8) got id 2 as well, replaced greet(7) in the task table, and greet(7) read
  // "hello 8".
  StoreThenReadDamaged([](StoredTask& task) { task.id += 1; });
}

TEST(DamagedRecords, AnUnknownOutputKindIsComputedAfresh) {
  // The result's first byte is its output kind (value, ref, error); 7 is none of them.
  StoreThenReadDamaged([](StoredTask& task) {
    if (!task.result.empty()) task.result[0] = 7;
  });
}

TEST(DamagedRecords, DamagedDependenciesReadInABatchAreComputedAfresh) {
  turbine::testing::TempDir dir;
  {
    turbine::testing::PersistedEngine<> d(dir.str());
    ASSERT_TRUE(d.engine.SetInputs({turbine::InputValue::Of("damaged.name", std::string("n"))}).ok());
    ASSERT_EQ(*d.engine.Read(both()), "n1,n2");
  }
  // named(1) and named(2) damaged, both() intact: its verification reads the two by id.
  DamagingStore::damage = [](StoredTask& task) {
    if (task.identity.find("test.damaged.named") != std::string::npos && !task.result.empty()) {
      task.result[0] = 7;
    }
  };
  DamagingStore::batches = 0;
  {
    turbine::testing::PersistedEngine<DamagingStore> d(dir.str());
    EXPECT_EQ(*d.engine.Read(both()), "n1,n2");
    EXPECT_EQ(DamagingStore::batches, 1);
    uint64_t executed = 0;
    for (const turbine::FunctionStats& fn : d.engine.Stats().functions) {
      if (fn.name == "test.damaged.named") executed = fn.executions;
    }
    EXPECT_EQ(executed, 2u);  // computed afresh, not served
  }
  DamagingStore::damage = nullptr;
}

}  // namespace
