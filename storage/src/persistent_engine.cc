// persistent_engine.cc — opening the store, then the engine on it.
#include "turbine/storage/persistent_engine.h"

#include <utility>

namespace turbine::storage {

absl::StatusOr<std::unique_ptr<PersistentEngine>> PersistentEngine::Open(
    const StoreOptions& store_options, EngineOptions engine_options,
    const MakeBackingStore& make_backing_store) {
  std::unique_ptr<PersistentEngine> opened(new PersistentEngine);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(store_options, &opened->report_);
  if (!store.ok()) return store.status();
  opened->store_ = std::move(*store);
  opened->backing_ = make_backing_store ? make_backing_store(opened->store_.get())
                                        : std::make_unique<RocksBackingStore>(opened->store_.get());
  engine_options.backing_store = opened->backing_.get();
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(std::move(engine_options));
  if (!engine.ok()) return engine.status();
  opened->engine_ = std::move(*engine);
  return opened;
}

}  // namespace turbine::storage
