// storage_fixture.cc — scratch directories, persistent engines and prebuilt databases.
#include "storage_fixture.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <vector>

#include "bench_tasks.h"

namespace turbine::bench {
namespace {

namespace fs = std::filesystem;

// kBuildBatch tasks are called, read and snapshotted together while a database is built:
// big enough that the workers run them in parallel, small enough that one snapshot's
// write batch stays a few tens of megabytes.
constexpr int64_t kBuildBatch = 100'000;

fs::path ScratchBase() {
  for (const char* variable : {"TURBINE_BENCH_DIR", "TMPDIR"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') return value;
  }
  return "/tmp";
}

void RemoveScratchDir() {
  std::error_code ignored;
  fs::remove_all(ScratchDir(), ignored);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// PersistBusyTasks computes busy(key, kPersistedMicros) for every key in [0, tasks) and
// snapshots them batch by batch, as turbo-uncached-parallel would.
absl::Status PersistBusyTasks(Engine& engine, int64_t tasks) {
  Engine::Scope scope(engine);
  const auto start = std::chrono::steady_clock::now();
  std::vector<Vc<int64_t>> vcs;
  for (int64_t first = 0; first < tasks; first += kBuildBatch) {
    const int64_t end = std::min(tasks, first + kBuildBatch);
    vcs.clear();
    for (int64_t key = first; key < end; ++key) vcs.push_back(busy(key, kPersistedMicros));
    for (int64_t key = first; key < end; ++key) {
      absl::StatusOr<int64_t> value = engine.Read(vcs[static_cast<size_t>(key - first)]);
      if (!value.ok() || *value != key) return absl::InternalError("wrong value while building");
    }
    if (absl::Status flushed = engine.Flush(); !flushed.ok()) return flushed;
    std::fprintf(stderr, "storage_bench: persisted %lld / %lld tasks (%.1f s)\n",
                 static_cast<long long>(end), static_cast<long long>(tasks), Seconds(start));
  }
  return absl::OkStatus();
}

// Settle writes the memtables out and compacts every table fully, so each benchmark
// starts from the same layout (no write-ahead log to replay, one sorted run per table)
// and the size on disk is the size of the data, not of its write history.
absl::Status Settle(storage::Store& store) { return store.CompactAll(); }

uint64_t DirectoryBytes(const fs::path& dir) {
  uint64_t bytes = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
}

absl::StatusOr<PersistedDb> BuildPersistedDb(int64_t tasks) {
  PersistedDb db;
  db.tasks = tasks;
  db.data_dir = (ScratchDir() / ("tasks-" + std::to_string(tasks))).string();
  fs::remove_all(db.data_dir);
  std::fprintf(stderr, "storage_bench: building a database of %lld tasks in %s\n",
               static_cast<long long>(tasks), db.data_dir.c_str());
  const auto start = std::chrono::steady_clock::now();
  // Snapshots only on Flush, one per batch: the background thread would split them
  // arbitrarily and compete for the two cores.
  absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
      OpenPersistentEngine(db.data_dir, std::chrono::milliseconds(0), /*must_exist=*/false);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<storage::PersistentEngine> persistent = std::move(*opened);
  if (absl::Status built = PersistBusyTasks(persistent->engine(), tasks); !built.ok()) {
    return built;
  }
  if (absl::Status settled = Settle(persistent->store()); !settled.ok()) return settled;
  const storage::StoreUsage usage = persistent->store().Usage();
  db.disk_bytes_per_task = static_cast<double>(usage.table_file_bytes + usage.memtable_bytes) /
                           static_cast<double>(tasks);
  persistent.reset();  // closes the store: its files are final now
  db.dir_bytes_per_task =
      static_cast<double>(DirectoryBytes(db.data_dir)) / static_cast<double>(tasks);
  std::fprintf(stderr, "storage_bench: built %lld tasks in %.1f s, %.1f bytes per task on disk\n",
               static_cast<long long>(tasks), Seconds(start), db.disk_bytes_per_task);
  return db;
}

}  // namespace

const fs::path& ScratchDir() {
  // Never destroyed: the exit handler that removes the directory still needs its name.
  static const fs::path* const dir = [] {
    std::string pattern = (ScratchBase() / "turbine-storage-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror(("storage_bench: cannot create a directory like " + pattern).c_str());
      std::abort();
    }
    auto* path = new fs::path(pattern);
    std::atexit(RemoveScratchDir);
    return path;
  }();
  return *dir;
}

ScopedDataDir::ScopedDataDir(const std::string& prefix) {
  static int next = 0;
  path_ = ScratchDir() / (prefix + "-" + std::to_string(next++));
  fs::remove_all(path_);
}

ScopedDataDir::~ScopedDataDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> OpenPersistentEngine(
    const std::string& data_dir, std::chrono::milliseconds snapshot_interval, bool must_exist) {
  absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
      storage::PersistentEngine::Open({.data_dir = data_dir},
                                      {.snapshot_interval = snapshot_interval});
  if (!opened.ok()) return opened.status();
  const storage::OpenReport& report = (*opened)->report();
  if (must_exist && (report.created || !report.moved_aside.empty())) {
    return absl::FailedPreconditionError("the store in " + data_dir +
                                         " was not reopened as built: " + report.reason);
  }
  return opened;
}

absl::StatusOr<const PersistedDb*> PersistedDbWith(int64_t tasks) {
  static auto* const built = new std::map<int64_t, PersistedDb>;
  if (auto it = built->find(tasks); it != built->end()) return &it->second;
  absl::StatusOr<PersistedDb> db = BuildPersistedDb(tasks);
  if (!db.ok()) return db.status();
  return &built->emplace(tasks, std::move(*db)).first->second;
}

KeyWalk::KeyWalk(int64_t tasks) : tasks_(tasks), stride_(7919 % tasks) {
  // 7919 is prime: any table size of ours (powers of ten) is coprime with it. The loop
  // only guards other sizes.
  while (std::gcd(stride_, tasks_) != 1) ++stride_;
}

}  // namespace turbine::bench
