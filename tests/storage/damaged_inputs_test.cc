// A damaged inputs table is reported, never read as "not set": the user's inputs are the
// one thing the store holds that cannot be recomputed. The damage is real: bytes flipped
// in the inputs table's file on disk, as a bad disk or a torn copy leaves them.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "records.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/format.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::Task;
using turbine::storage::OpenReport;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::storage::Table;

constexpr int kInputs = 15;

Task<std::string> ReadImpl(std::string key) { co_return co_await turbine::Input<std::string>(key); }
inline const turbine::Function<ReadImpl> read_input{"test.damaged.read", 1};

std::string Key(int n) { return "cell" + std::to_string(n); }
std::string Value(int n) { return "value of cell " + std::to_string(n) + std::string(200, 'v'); }

// FlipBytes inverts `count` bytes of `path` from `offset`.
void FlipBytes(const std::filesystem::path& path, std::streamoff offset, int count) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file.is_open()) << path;
  for (int i = 0; i < count; ++i) {
    file.seekg(offset + i);
    const char c = static_cast<char>(file.get());
    file.seekp(offset + i);
    file.put(static_cast<char>(~c));
  }
}

TEST(DamagedInputs, AreReportedAtOpenAndReadAsDataLossNeverAsUnset) {
  turbine::testing::TempDir dir;
  std::filesystem::path table_file;
  {
    auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
    RocksBackingStore backing(store.get());
    turbine::Engine engine({.worker_threads = 2, .backing_store = &backing});
    std::vector<turbine::InputValue> inputs;
    for (int n = 0; n < kInputs; ++n) inputs.push_back(turbine::InputValue::Of(Key(n), Value(n)));
    ASSERT_TRUE(engine.SetInputs(std::move(inputs)).ok());
    // Into a table file (the log would be replayed, not read through the table).
    ASSERT_TRUE(store->CompactAll().ok());
    const std::vector<std::string> files = store->TableFiles(Table::kInputs);
    ASSERT_EQ(files.size(), 1u);
    table_file = files.front();
  }
  ASSERT_FALSE(table_file.empty());
  FlipBytes(table_file, 64, 16);  // inside the first data block

  OpenReport report;
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}, &report));
  EXPECT_FALSE(report.damaged_inputs.empty());
  EXPECT_TRUE(report.moved_aside.empty());  // the inputs are kept, damaged or not
  RocksBackingStore backing(store.get());
  turbine::Engine engine({.worker_threads = 2, .backing_store = &backing});
  turbine::Engine::Scope scope(engine);
  int lost = 0;
  for (int n = 0; n < kInputs; ++n) {
    absl::StatusOr<std::string> value = engine.Read(read_input(Key(n)));
    if (value.ok()) {
      EXPECT_EQ(*value, Value(n));
      continue;
    }
    ++lost;
    EXPECT_EQ(value.status().code(), absl::StatusCode::kDataLoss) << value.status();
    EXPECT_EQ(value.status().message().find("not set"), std::string::npos) << value.status();
  }
  EXPECT_GT(lost, 0);

  // Setting a damaged input again makes it readable: the new value supersedes the damage.
  ASSERT_TRUE(engine.SetInput(Key(0), std::string("repaired")).ok());
  EXPECT_EQ(*engine.Read(read_input(Key(0))), "repaired");
}

// StoreWithInputs sets the inputs and computes something in a store at `dir`, all in
// table files; returns the files of `table`.
std::vector<std::string> StoreWithInputs(const std::string& dir, Table table) {
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir}));
  RocksBackingStore backing(store.get());
  {
    turbine::Engine engine({.worker_threads = 2, .backing_store = &backing});
    turbine::Engine::Scope scope(engine);
    std::vector<turbine::InputValue> inputs;
    for (int n = 0; n < kInputs; ++n) inputs.push_back(turbine::InputValue::Of(Key(n), Value(n)));
    // One name too long to be its own key: carried over with its name.
    inputs.push_back(turbine::InputValue::Of(std::string(3000, 'n'), std::string("long")));
    EXPECT_TRUE(engine.SetInputs(std::move(inputs)).ok());
    EXPECT_EQ(*engine.Read(read_input(Key(1))), Value(1));
    EXPECT_TRUE(engine.Flush().ok());
    // Into table files (the log would be replayed, not read through the tables).
    const absl::Status compacted = store->CompactAll();
    EXPECT_TRUE(compacted.ok()) << compacted;
  }
  return store->TableFiles(table);
}

// BreakFooter inverts the last bytes of a table file, its magic number: RocksDB cannot
// open the file, and so not the database, when it loads its tables at open.
void BreakFooter(const std::filesystem::path& path) {
  FlipBytes(path, static_cast<std::streamoff>(std::filesystem::file_size(path)) - 8, 8);
}

// Every input reads back as it was set.
void ExpectInputs(Store& store) {
  RocksBackingStore backing(&store);
  turbine::Engine engine({.worker_threads = 2, .backing_store = &backing});
  turbine::Engine::Scope scope(engine);
  for (int n = 0; n < kInputs; ++n) {
    absl::StatusOr<std::string> value = engine.Read(read_input(Key(n)));
    ASSERT_TRUE(value.ok()) << Key(n) << ": " << value.status();
    EXPECT_EQ(*value, Value(n));
  }
  EXPECT_EQ(*engine.Read(read_input(std::string(3000, 'n'))), "long");
  // The stamps go on past theirs: a new value is a change its readers see.
  ASSERT_TRUE(engine.SetInput(Key(2), std::string("new")).ok());
  EXPECT_EQ(*engine.Read(read_input(Key(2))), "new");
}

// Damage that stops the database from opening, in a table other than the inputs: the
// database is moved aside as before, and its inputs, all readable, go into the new one.
// Before, they were left in the database moved aside and read as not set.
TEST(DamagedInputs, DamageElsewhereThatStopsTheOpenCarriesTheInputsOver) {
  for (Table table : {Table::kTasks, Table::kTaskIds, Table::kMeta}) {
    turbine::testing::TempDir dir;
    const std::vector<std::string> files = StoreWithInputs(dir.str(), table);
    ASSERT_FALSE(files.empty());
    BreakFooter(files.front());
    OpenReport report;
    absl::StatusOr<std::unique_ptr<Store>> store =
        Store::Open(StoreOptions{.data_dir = dir.str()}, &report);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_FALSE(report.moved_aside.empty()) << static_cast<int>(table);
    EXPECT_EQ(report.carried_inputs, static_cast<size_t>(kInputs) + 1) << report.inputs_left;
    EXPECT_FALSE(report.kept_damaged);
    ExpectInputs(**store);
  }
}

// The inputs carried over are written into a database beside the damaged one, which is
// then moved aside and replaced: a start cut short between the two finds the carried one
// whole at the next start and puts it in place; one cut short while writing it finds the
// damaged database still there and salvages it again. Never are the inputs only in the
// database moved aside.
TEST(DamagedInputs, AStartCutShortWhileCarryingLosesNoInput) {
  turbine::testing::TempDir dir;
  const std::filesystem::path db = dir.path() / "db";
  const std::vector<std::string> files = StoreWithInputs(dir.str(), Table::kTasks);
  ASSERT_FALSE(files.empty());
  BreakFooter(files.front());
  // Cut short while writing: a partial database beside the damaged one.
  std::filesystem::create_directories(dir.path() / "db.carrying");
  std::ofstream(dir.path() / "db.carrying" / "CURRENT") << "MANIFEST-000001\n";
  {
    OpenReport report;
    auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}, &report));
    EXPECT_EQ(report.carried_inputs, static_cast<size_t>(kInputs) + 1) << report.inputs_left;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "db.carrying"));
  // Cut short after the damaged one was moved aside: the carried one waits beside.
  std::filesystem::rename(db, dir.path() / "db.carried");
  OpenReport report;
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}, &report));
  EXPECT_FALSE(report.created);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "db.carried"));
  ExpectInputs(*store);
}

// A store of an older build (format version 3) has fewer tables than this build, which a
// read-only open does not make: the salvage opens the tables there are. Its long names,
// keyed whole as version 3 did, are carried over keyed as version 4 does.
TEST(DamagedInputs, AnOlderStoreWithFewerTablesHasItsInputsCarriedOver) {
  turbine::testing::TempDir dir;
  const std::string long_name(3000, 'x');
  std::string tasks_file;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "meta", "tasks", "task_ids", "inputs"}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(options, (dir.path() / "db").string(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put({}, handles[1], turbine::storage::kFormatVersionKey, "3").ok());
    for (const std::string& name : {std::string("short"), long_name}) {
      std::string record;
      turbine::storage::EncodeInputRecord(
          {.type_name = "t", .bytes = "v:" + name.substr(0, 5), .stamp = 7}, &record);
      ASSERT_TRUE(db->Put({}, handles[4], name, record).ok());
    }
    ASSERT_TRUE(db->Put({}, handles[2], "a task", "its record").ok());
    ASSERT_TRUE(db->Flush({}, handles).ok());
    std::vector<rocksdb::LiveFileMetaData> files;
    db->GetLiveFilesMetaData(&files);
    for (const rocksdb::LiveFileMetaData& file : files) {
      if (file.column_family_name == "tasks") tasks_file = file.db_path + "/" + file.name;
    }
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }
  ASSERT_FALSE(tasks_file.empty());
  BreakFooter(tasks_file);
  OpenReport report;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(StoreOptions{.data_dir = dir.str()}, &report);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(report.carried_inputs, 2u) << report.inputs_left;
  RocksBackingStore backing(store->get());
  for (const std::string& name : {std::string("short"), long_name}) {
    absl::StatusOr<std::optional<turbine::StoredInput>> input = backing.ReadInput(name);
    ASSERT_TRUE(input.ok()) << input.status();
    ASSERT_TRUE(input->has_value()) << name.substr(0, 10);
    EXPECT_EQ((*input)->bytes, "v:" + name.substr(0, 5));
    EXPECT_EQ((*input)->stamp, 7u);
  }
  EXPECT_GT(*backing.NextStamp(), 7u);
}

// Damage in the meta table that the open does not read (a data block): the start read the
// counters there and failed, every time. Now the table is read whole at open, and the
// database is moved aside with its inputs carried over.
TEST(DamagedInputs, AMetaTableDamagedInsideIsFoundAtOpenAndTheInputsCarriedOver) {
  turbine::testing::TempDir dir;
  const std::vector<std::string> files = StoreWithInputs(dir.str(), Table::kMeta);
  ASSERT_EQ(files.size(), 1u);
  FlipBytes(files.front(), 64, 16);  // inside the first data block
  OpenReport report;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(StoreOptions{.data_dir = dir.str()}, &report);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE(report.moved_aside.empty());
  EXPECT_EQ(report.carried_inputs, static_cast<size_t>(kInputs) + 1) << report.inputs_left;
  ExpectInputs(**store);
}

// Damage in the inputs table that stops the open: the inputs cannot all be carried over,
// so the database stays, opened with the damaged file left for the reads that need it to
// fail: DATA_LOSS, never "not set". Before, it was moved aside and every input read as not
// set.
TEST(DamagedInputs, DamageInTheInputsThatStopsTheOpenKeepsTheDatabase) {
  turbine::testing::TempDir dir;
  const std::vector<std::string> files = StoreWithInputs(dir.str(), Table::kInputs);
  ASSERT_EQ(files.size(), 1u);
  BreakFooter(files.front());
  OpenReport report;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(StoreOptions{.data_dir = dir.str()}, &report);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(report.moved_aside.empty()) << report.reason;
  EXPECT_TRUE(report.kept_damaged);
  EXPECT_FALSE(report.damaged_inputs.empty());
  RocksBackingStore backing(store->get());
  turbine::Engine engine({.worker_threads = 2, .backing_store = &backing});
  turbine::Engine::Scope scope(engine);
  for (int n = 0; n < kInputs; ++n) {
    // Read(cell1) was stored with its result, which nothing since changed: served from it.
    if (n == 1) continue;
    absl::StatusOr<std::string> value = engine.Read(read_input(Key(n)));
    ASSERT_FALSE(value.ok()) << Key(n);
    EXPECT_EQ(value.status().code(), absl::StatusCode::kDataLoss) << value.status();
  }
  // Set again, an input reads back.
  ASSERT_TRUE(engine.SetInput(Key(0), std::string("repaired")).ok());
  EXPECT_EQ(*engine.Read(read_input(Key(0))), "repaired");
}

}  // namespace
