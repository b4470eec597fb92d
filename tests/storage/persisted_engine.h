// persisted_engine.h — one process lifetime of a persistent engine, as a daemon has it
// (storage::PersistentEngine on a data directory), with the engine current on the
// constructing thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "turbine/engine.h"
#include "turbine/storage/persistent_engine.h"
#include "turbine/storage/rocks_backing_store.h"

namespace turbine::testing {

// VerifyingStore is a RocksBackingStore whose log of input changes vouches for nothing, so
// every restored result that read an input is verified before use, as without a log: for
// tests of what verification does.
struct VerifyingStore : storage::RocksBackingStore {
  using RocksBackingStore::RocksBackingStore;
  absl::StatusOr<InputChangeLog> ReadInputChanges(size_t keep) override {
    absl::StatusOr<InputChangeLog> log = RocksBackingStore::ReadInputChanges(keep);
    if (log.ok()) log->since = ~uint64_t{0};
    return log;
  }
};

// CollidingStore gives every task the same hash on disk, so a lookup must tell candidates
// apart by their identity bytes alone.
class CollidingStore : public storage::RocksBackingStore {
 public:
  using RocksBackingStore::RocksBackingStore;
  absl::StatusOr<std::optional<StoredTask>> FindTask(uint64_t, std::string_view identity) override {
    return RocksBackingStore::FindTask(0, identity);
  }
  absl::Status WriteSnapshot(const std::vector<StoredTask>& tasks, uint64_t next_id,
                             uint64_t next_stamp) override {
    std::vector<StoredTask> colliding = tasks;
    for (StoredTask& task : colliding) task.hash = 0;
    return RocksBackingStore::WriteSnapshot(colliding, next_id, next_stamp);
  }
};

template <class Backing = storage::RocksBackingStore>
struct PersistedEngine {
  explicit PersistedEngine(const std::string& dir,
                           std::chrono::milliseconds snapshot_interval = std::chrono::seconds(1))
      : PersistedEngine(dir, EngineOptions{.worker_threads = 2,
                                           .snapshot_interval = snapshot_interval,
                                           .gc = {.interval = {}}}) {}
  // With options of the test's own (`backing_store` is ignored). Background GC passes are
  // the test's to switch on.
  PersistedEngine(const std::string& dir, EngineOptions options)
      : owner(Open(dir, std::move(options))), engine(owner->engine()), scope(engine) {}

  Backing& backing() { return static_cast<Backing&>(owner->backing_store()); }

  std::unique_ptr<storage::PersistentEngine> owner;
  Engine& engine;
  Engine::Scope scope;

 private:
  static std::unique_ptr<storage::PersistentEngine> Open(const std::string& dir,
                                                         EngineOptions options) {
    auto opened = storage::PersistentEngine::Open(
        storage::StoreOptions{.data_dir = dir}, std::move(options),
        [](storage::Store* store) { return std::make_unique<Backing>(store); });
    if (!opened.ok()) {
      ADD_FAILURE() << "cannot open " << dir << ": " << opened.status();
      std::abort();
    }
    return std::move(*opened);
  }
};

}  // namespace turbine::testing
