// storage_fixture.h — what the storage benchmarks share: a scratch directory, an engine on
// a RocksDB store, and databases of persisted busy tasks built once per process.
//
// Everything lives under one scratch directory, created on first use in
// $TURBINE_BENCH_DIR, else $TMPDIR, else /tmp, and removed when the process exits. A
// database of N persisted tasks takes a while to build (15-20 s for a million on the
// project's 2-core VM), so it is built on first use and reused by every benchmark that
// asks for N tasks.
//
// Thread-safety: none. Google Benchmark runs one benchmark at a time on the main thread,
// and only that thread calls these.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "turbine/engine.h"
#include "turbine/storage/persistent_engine.h"

namespace turbine::bench {

// kPersistedMicros is the `micros` argument of every persisted busy task (part of its
// identity, so readers must pass the same value). Restored tasks never run their body.
inline constexpr int64_t kPersistedMicros = 1;

// ScratchDir returns the process's scratch directory, creating it on first call and
// arranging for its removal at exit.
const std::filesystem::path& ScratchDir();

// ScopedDataDir is a fresh, empty directory under ScratchDir(), removed on destruction.
class ScopedDataDir {
 public:
  explicit ScopedDataDir(const std::string& prefix);
  ~ScopedDataDir();
  ScopedDataDir(const ScopedDataDir&) = delete;
  ScopedDataDir& operator=(const ScopedDataDir&) = delete;

  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// OpenPersistentEngine opens (or creates) the store in `data_dir` and starts an engine on
// it. With `must_exist`, a store that Open created or moved aside is an error: a benchmark
// of restored tasks would otherwise silently measure an empty cache.
absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> OpenPersistentEngine(
    const std::string& data_dir, std::chrono::milliseconds snapshot_interval, bool must_exist);

// PersistedDb is a data directory whose store holds `tasks` clean busy tasks,
// busy(key, kPersistedMicros) for key in [0, tasks), fully compacted. Not open.
struct PersistedDb {
  std::string data_dir;
  int64_t tasks = 0;
  // What the store reports on disk (Store::Usage: table files and memtables)
  // after the full compaction, per task.
  double disk_bytes_per_task = 0;
  // Every file in the database directory (tables, manifest, logs), per task.
  double dir_bytes_per_task = 0;
};

// RegisterRestartConeBenchmarks registers restart-cone and restart-cone-changed
// (restart_cone_bench.cc).
void RegisterRestartConeBenchmarks();

// PersistedDbWith returns the database of `tasks` persisted tasks, building it on first
// use (untimed by the caller's choice; progress goes to stderr).
absl::StatusOr<const PersistedDb*> PersistedDbWith(int64_t tasks);

// KeyWalk visits every key of [0, tasks) once per `tasks` steps, never two neighbours in
// a row: consecutive first hits land in different table blocks, as requests after a
// restart would, instead of sharing one block that the first of them brought in.
class KeyWalk {
 public:
  explicit KeyWalk(int64_t tasks);
  // Key returns the i-th key of the walk.
  int64_t Key(int64_t i) const { return (i % tasks_) * stride_ % tasks_; }

 private:
  int64_t tasks_;
  int64_t stride_;  // coprime with tasks_, so i -> i * stride_ (mod tasks_) is a permutation
};

}  // namespace turbine::bench
