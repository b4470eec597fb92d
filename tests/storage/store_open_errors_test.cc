// An open that fails because of the environment (a file limit, a permission) is an error
// that leaves the database where it is: it is fine, and is used once the fault is gone.
#include <gtest/gtest.h>
#include <rocksdb/file_system.h>

#include <filesystem>
#include <memory>
#include <string>

#include "open_store.h"
#include "temp_dir.h"
#include "turbine/storage/store.h"

namespace {

namespace fs = std::filesystem;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::storage::Table;
using turbine::testing::OpenStore;
using turbine::testing::TempDir;

// UnreadableFiles fails every open for reading of the database's files whose name ends in
// `suffix` with `reason`, as the system does past the open-file limit or without read
// permission (root passes every permission check, so a test cannot chmod).
class UnreadableFiles : public rocksdb::FileSystemWrapper {
 public:
  UnreadableFiles(std::string suffix, std::string reason)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        suffix_(std::move(suffix)),
        reason_(std::move(reason)) {}
  const char* Name() const override { return "UnreadableFiles"; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& name,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* file,
                                        rocksdb::IODebugContext* debug) override {
    if (name.ends_with(suffix_)) return Refused(name, "random read");
    return target()->NewRandomAccessFile(name, options, file, debug);
  }
  rocksdb::IOStatus NewSequentialFile(const std::string& name, const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* file,
                                      rocksdb::IODebugContext* debug) override {
    if (name.ends_with(suffix_)) return Refused(name, "reading");
    return target()->NewSequentialFile(name, options, file, debug);
  }

 private:
  rocksdb::IOStatus Refused(const std::string& name, const char* how) const {
    return rocksdb::IOStatus::IOError(std::string("While open a file for ") + how + ": " + name,
                                      reason_);
  }
  std::string suffix_;
  std::string reason_;
};

bool AnythingMovedAside(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with("db.")) return true;
  }
  return false;
}

// Before: RocksDB said "Invalid argument: Found options incompatible with filesystem: IO
// error: ... CURRENT: Too many open files" (or "Corruption: ... IO error: ..." for a table
// file), the store took it for a database it does not understand (or a damaged one) and
// moved it aside, and the inputs in it read as not set.
TEST(StoreOpenErrors, AFileItCannotOpenNowLeavesTheDatabaseInPlace) {
  TempDir dir;
  {
    auto store = OpenStore(dir.str());
    ASSERT_TRUE(store->Put(Table::kInputs, "kept", "7").ok());
  }
  struct Case {
    const char* file;
    const char* reason;
    absl::StatusCode code;
  };
  for (const Case& fault :
       {Case{"/CURRENT", "Too many open files", absl::StatusCode::kUnavailable},
        Case{"/CURRENT", "Permission denied", absl::StatusCode::kPermissionDenied},
        Case{".sst", "Too many open files", absl::StatusCode::kUnavailable},
        Case{".sst", "Permission denied", absl::StatusCode::kPermissionDenied}}) {
    absl::StatusOr<std::unique_ptr<Store>> refused = Store::Open(
        StoreOptions{.data_dir = dir.str(),
                     .file_system = std::make_shared<UnreadableFiles>(fault.file, fault.reason)});
    ASSERT_FALSE(refused.ok()) << fault.file << ": " << fault.reason;
    EXPECT_EQ(refused.status().code(), fault.code) << refused.status();
    EXPECT_NE(refused.status().message().find(fault.reason), std::string::npos) << refused.status();
    EXPECT_FALSE(AnythingMovedAside(dir.path())) << fault.reason;
  }
  auto store = OpenStore(dir.str());
  std::string value;
  ASSERT_TRUE(*store->Get(Table::kInputs, "kept", &value));
  EXPECT_EQ(value, "7");
}

}  // namespace
