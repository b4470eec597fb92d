// shared_tier.h — what the engine needs from a cache shared by many machines.
//
// Behind memory and the backing store, an engine may consult a shared tier before it
// executes a task: a key-value store holding, per task, a *verifying trace* (the task's
// output and cells, and for each dependency it read, that dependency's stable identity and
// a digest of the value it saw). The engine adopts a trace only after reading every
// dependency here and finding the same digest (docs/ARCHITECTURE.md, "The shared tier").
// turbine::shared implements this interface on Redis Cluster; the engine never sees Redis.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace turbine {

class SharedTier {
 public:
  virtual ~SharedTier() = default;
  // Lookup returns the record stored under `key`, or nullopt if there is none. It must
  // return within its own short timeout; an error (timeout, unreachable) is a miss to the
  // engine. Called from engine worker threads.
  virtual absl::StatusOr<std::optional<std::string>> Lookup(const std::string& key) = 0;
  // LookupMany is Lookup of every key, in order, in as few round trips as the tier can
  // (the engine fetches a trace's dependencies' traces together). Any error fails it all.
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> LookupMany(
      const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> values;
    for (const std::string& key : keys) {
      absl::StatusOr<std::optional<std::string>> value = Lookup(key);
      if (!value.ok()) return value.status();
      values.push_back(std::move(*value));
    }
    return values;
  }
  // Publish stores `records` (key, record), batched. Called only from the engine's one
  // publishing thread, never on a caller's path.
  virtual absl::Status Publish(const std::vector<std::pair<std::string, std::string>>& records) = 0;
  // Stop makes every call from now on fail at once, and cuts short the ones waiting: they
  // fail now (CANCELLED: a lookup is then a miss, a publish dropped, and neither an outage)
  // rather than at their timeout. A daemon that stops calls it when its calls were cut
  // with some still running, so that no lookup holds a worker, and the last snapshot, for
  // the tier's whole timeout. Safe from any thread.
  virtual void Stop() {}
};

struct SharedTierOptions {
  // Null: no shared tier.
  std::shared_ptr<SharedTier> tier = nullptr;
  // Keys are prefixed by it: one cluster serves many projects (or versions) that never see
  // each other's records.
  std::string name_space = "default";
  // Publish the traces of tasks this engine executes (readwrite); false: read only.
  bool publish = false;
  // Records larger than this are neither published nor adopted (they are counted).
  size_t max_record_bytes = 1 << 20;
  // Traces waiting to be published; beyond it new ones are dropped (and counted).
  size_t max_queued = 10000;
  // The tier did not answer when the daemon started, which it said then: its first
  // failures are that outage, not news for the log; its coming back is.
  bool unavailable_at_start = false;
};

}  // namespace turbine
