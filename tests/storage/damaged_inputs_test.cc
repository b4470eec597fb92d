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

#include "temp_dir.h"
#include "turbine/engine.h"
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

}  // namespace
