// Store faults as the engine sees them: an input batch the store does not acknowledge is
// not applied, and an input the store cannot read is an error, never "not set". The store
// is an in-memory stand-in whose faults the test switches on and off; the same faults on a
// real RocksDB directory and a real full disk are in tests/storage and tests/daemon.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "turbine/backing_store.h"
#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::InputValue;
using turbine::StoredInput;
using turbine::StoredTask;
using turbine::Task;

// FaultyStore keeps inputs in a map and fails the operations the test asks it to.
class FaultyStore : public turbine::BackingStore {
 public:
  absl::Status write_error;  // returned by WriteInputs and WriteSnapshot while not OK
  absl::Status read_error;   // returned by ReadInput while not OK

  absl::StatusOr<std::optional<StoredInput>> ReadInput(std::string_view key) override {
    std::lock_guard lock(mu_);
    if (!read_error.ok()) return read_error;
    auto found = inputs_.find(std::string(key));
    if (found == inputs_.end()) return std::nullopt;
    return found->second;
  }
  absl::Status WriteInputs(const std::vector<std::pair<std::string, StoredInput>>& inputs,
                           uint64_t next_stamp) override {
    std::lock_guard lock(mu_);
    if (!write_error.ok()) return write_error;
    for (const auto& [key, input] : inputs) inputs_[key] = input;
    next_stamp_ = next_stamp;
    return absl::OkStatus();
  }
  absl::Status DeleteInputs(const std::vector<std::string>& keys, uint64_t next_stamp) override {
    std::lock_guard lock(mu_);
    if (!write_error.ok()) return write_error;
    for (const std::string& key : keys) inputs_.erase(key);
    next_stamp_ = next_stamp;
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> NextStamp() override {
    std::lock_guard lock(mu_);
    return next_stamp_;
  }
  absl::StatusOr<std::optional<StoredTask>> FindTask(uint64_t, std::string_view) override {
    return std::nullopt;
  }
  absl::StatusOr<std::optional<StoredTask>> ReadTask(uint64_t) override { return std::nullopt; }
  absl::Status WriteSnapshot(const std::vector<StoredTask>&, uint64_t, uint64_t) override {
    std::lock_guard lock(mu_);
    return write_error;
  }
  absl::StatusOr<uint64_t> NextTaskId() override { return uint64_t{1}; }

  void Fail(absl::Status error) {
    std::lock_guard lock(mu_);
    write_error = std::move(error);
  }
  void FailReads(absl::Status error) {
    std::lock_guard lock(mu_);
    read_error = std::move(error);
  }

 private:
  std::mutex mu_;
  std::map<std::string, StoredInput> inputs_;
  uint64_t next_stamp_ = 1;
};

Task<int64_t> PriceImpl() { co_return co_await Input<int64_t>("price"); }
inline const turbine::Function<PriceImpl> price{"test.faults.price", 1};

TEST(StoreFaults, ABatchTheStoreDoesNotAcknowledgeIsNotApplied) {
  FaultyStore store;
  turbine::Engine engine({.worker_threads = 2, .backing_store = &store, .snapshot_interval = {}});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("price", int64_t{10}).ok());
  ASSERT_EQ(*engine.Read(price()), 10);
  std::atomic<int> notifications = 0;
  engine.AddChangeListener([&] { notifications.fetch_add(1); });

  store.Fail(absl::ResourceExhaustedError("no space left on device"));
  size_t changed = 99;
  absl::Status set = engine.SetInputs({InputValue::Of("price", int64_t{20})}, &changed);
  EXPECT_EQ(set.code(), absl::StatusCode::kResourceExhausted) << set;
  EXPECT_EQ(changed, 0u);
  EXPECT_EQ(*engine.Read(price()), 10);  // served as before: 20 would not survive a restart
  EXPECT_EQ(notifications.load(), 0);    // and no watcher saw it

  // The same value again once the store takes writes: it is a change, and it applies.
  store.Fail(absl::OkStatus());
  ASSERT_TRUE(engine.SetInputs({InputValue::Of("price", int64_t{20})}, &changed).ok());
  EXPECT_EQ(changed, 1u);
  EXPECT_EQ(*engine.Read(price()), 20);
  EXPECT_EQ(notifications.load(), 1);
}

TEST(StoreFaults, ADeletionTheStoreDoesNotAcknowledgeIsNotApplied) {
  FaultyStore store;
  turbine::Engine engine({.worker_threads = 2, .backing_store = &store, .snapshot_interval = {}});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("price", int64_t{10}).ok());
  ASSERT_EQ(*engine.Read(price()), 10);
  std::atomic<int> notifications = 0;
  engine.AddChangeListener([&] { notifications.fetch_add(1); });

  store.Fail(absl::ResourceExhaustedError("no space left on device"));
  size_t changed = 99;
  absl::Status deleted = engine.DeleteInputs({"price"}, &changed);
  EXPECT_EQ(deleted.code(), absl::StatusCode::kResourceExhausted) << deleted;
  EXPECT_NE(deleted.message().find("not deleted"), std::string::npos) << deleted;
  EXPECT_EQ(changed, 0u);
  EXPECT_EQ(*engine.Read(price()), 10);  // still set: the deletion would not survive a restart
  EXPECT_EQ(notifications.load(), 0);

  store.Fail(absl::OkStatus());
  ASSERT_TRUE(engine.DeleteInputs({"price"}, &changed).ok());
  EXPECT_EQ(changed, 1u);
  EXPECT_FALSE(engine.Read(price()).ok());
  EXPECT_EQ(notifications.load(), 1);
}

TEST(StoreFaults, AnInputTheStoreCannotReadIsDataLossNotUnset) {
  FaultyStore store;
  {
    turbine::Engine engine({.backing_store = &store, .snapshot_interval = {}});
    ASSERT_TRUE(engine.SetInput("price", int64_t{10}).ok());
  }
  store.read_error = absl::DataLossError("block checksum mismatch in inputs");
  turbine::Engine engine({.worker_threads = 2, .backing_store = &store, .snapshot_interval = {}});
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> read = engine.Read(price());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  EXPECT_NE(read.status().message().find("block checksum mismatch"), std::string::npos);
  EXPECT_EQ(read.status().message().find("not set"), std::string::npos);

  // Setting it again repairs it.
  ASSERT_TRUE(engine.SetInput("price", int64_t{11}).ok());
  EXPECT_EQ(*engine.Read(price()), 11);
}

// A read error that may pass (UNAVAILABLE: an I/O error) is not kept: the input is read
// again every second, and once the store answers, what read the error reads the value.
TEST(StoreFaults, AnInputTheStoreCouldNotReadForAWhileIsReadAgain) {
  FaultyStore store;
  {
    turbine::Engine engine({.backing_store = &store, .snapshot_interval = {}});
    ASSERT_TRUE(engine.SetInput("price", int64_t{10}).ok());
  }
  store.FailReads(absl::UnavailableError("input/output error"));
  turbine::Engine engine({.worker_threads = 2, .backing_store = &store, .snapshot_interval = {}});
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> read = engine.Read(price());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kUnavailable) << read.status();

  store.FailReads(absl::OkStatus());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(read = engine.Read(price())).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 10);
}

}  // namespace
