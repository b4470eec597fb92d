// persistent_engine.h — an engine on a RocksDB store, opened, owned and closed in order.
//
//   auto opened = turbine::storage::PersistentEngine::Open(
//       {.data_dir = "/var/lib/turbine"}, {.worker_threads = 4});
//   if (!opened.ok()) { ... }                        // never a silent memory-only engine
//   turbine::Engine& engine = (*opened)->engine();
//
// Open opens the store (moving an unusable database aside, as report() then says), puts
// the backing store over it and starts the engine. Destruction runs the other way: the
// engine stops and writes its last snapshot, then the store closes. This is the one place
// that wiring lives; the daemon, the benchmarks and the tests all open engines through it.
//
// Thread-safety: the engine and the store are safe from any thread; Open and destruction
// are not concurrent with their use.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <memory>

#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace turbine::storage {

class PersistentEngine {
 public:
  // MakeBackingStore builds the adapter over the opened store; for tests that inject faults
  // through a RocksBackingStore subclass. Null: a plain RocksBackingStore.
  using MakeBackingStore = std::function<std::unique_ptr<RocksBackingStore>(Store* store)>;

  // Open opens the store in `store_options.data_dir` and an engine on it
  // (`engine_options.backing_store` is ignored). Errors are Store::Open's, and the store's
  // when its counters cannot be read.
  static absl::StatusOr<std::unique_ptr<PersistentEngine>> Open(
      const StoreOptions& store_options, EngineOptions engine_options,
      const MakeBackingStore& make_backing_store = nullptr);
  ~PersistentEngine() = default;
  PersistentEngine(const PersistentEngine&) = delete;
  PersistentEngine& operator=(const PersistentEngine&) = delete;

  Engine& engine() { return *engine_; }
  Store& store() { return *store_; }
  RocksBackingStore& backing_store() { return *backing_; }
  // What opening the store found: created, or moved aside and why.
  const OpenReport& report() const { return report_; }

 private:
  PersistentEngine() = default;

  OpenReport report_;
  // In opening order, so members are destroyed in closing order: the engine's destructor
  // writes the last snapshot through the backing store into the store.
  std::unique_ptr<Store> store_;
  std::unique_ptr<RocksBackingStore> backing_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace turbine::storage
