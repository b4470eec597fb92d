// persisted_engine.h — one process lifetime of a persistent engine, as a daemon has it:
// the store on a data directory, the backing store over it, and an engine current on
// the constructing thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace turbine::testing {

template <class Backing = storage::RocksBackingStore>
struct PersistedEngine {
  explicit PersistedEngine(const std::string& dir,
                           std::chrono::milliseconds snapshot_interval = std::chrono::seconds(1))
      : store(std::move(*storage::Store::Open(storage::StoreOptions{.data_dir = dir}))),
        backing(store.get()),
        engine(EngineOptions{.worker_threads = 2,
                             .backing_store = &backing,
                             .snapshot_interval = snapshot_interval}),
        scope(engine) {}

  std::unique_ptr<storage::Store> store;
  Backing backing;
  Engine engine;
  Engine::Scope scope;
};

}  // namespace turbine::testing
