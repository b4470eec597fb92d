// backing_store.h — what the engine needs from persistent storage (DESIGN §3).
//
// The engine owns this interface; turbine::storage implements it on RocksDB. An engine
// without one keeps everything in memory. Implementations must be safe to call from any
// thread. The engine never calls them while holding one of its own locks.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turbine {

// StoredInput is an input as persisted: its value's stable type name, the value's
// canonical bytes, and the change stamp the engine gave it.
struct StoredInput {
  std::string type_name;
  std::string bytes;
  uint64_t stamp = 0;
};

class BackingStore {
 public:
  virtual ~BackingStore() = default;

  // ReadInput returns the persisted input `key`, or nullopt if there is none.
  virtual absl::StatusOr<std::optional<StoredInput>> ReadInput(std::string_view key) = 0;

  // WriteInputs persists a batch of inputs atomically and durably (synced) together with
  // `next_stamp`, the engine's stamp counter: once it returns OK, the inputs survive a
  // crash, and no stamp below `next_stamp` is ever given out again.
  virtual absl::Status WriteInputs(const std::vector<std::pair<std::string, StoredInput>>& inputs,
                                   uint64_t next_stamp) = 0;

  // NextStamp returns the persisted stamp counter (1 for a new store).
  virtual absl::StatusOr<uint64_t> NextStamp() = 0;
};

}  // namespace turbine
