// store_recovery.cc — making the store writable again after a write failed.
//
// A write that fails stops RocksDB's writes. Before the next write the store asks RocksDB
// to resume (a full disk: it succeeds once there is room). Some errors RocksDB never
// resumes from, cause fixed or not (a log file it could not create in a directory made
// read-only): then the failed instance is replaced by a read-only open, which serves
// reads, and closed once its last reads end; each later write tries to open the database
// for writing again. Opening read-only on a full disk (Store::OpenDatabase) ends in the
// same state. Nothing acknowledged is lost on the way: the log keeps every write until a
// table file holds it.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "resumer.h"
#include "store_internal.h"

namespace turbine::storage {

absl::Status Store::PrepareWrite() {
  if (!shared_->errors->Pending() && !ReadOnly()) return absl::OkStatus();
  std::lock_guard lock(recover_mu_);
  if (!ReadOnly() && !shared_->errors->Pending()) return absl::OkStatus();  // another resumed
  // An attempt writes what fits before it fails (a resume flushes the memtables, a reopen
  // replays the log into a table file): while the disk has no more room than when the
  // last attempt failed for lack of it, refuse at once instead.
  const std::optional<uint64_t> free = FreeBytes(path_);
  if (free.has_value() && shared_->free_when_full.has_value() &&
      *free <= *shared_->free_when_full) {
    return absl::ResourceExhaustedError("the disk is full (" + std::to_string(*free) +
                                        " bytes free): writes resume once space is freed");
  }
  absl::Status recovered = ReadOnly() ? ReopenForWriting() : ResumeWriting();
  if (!recovered.ok() && shared_->resume_refused.exchange(false)) {
    recovered = ReplaceFailedInstance();
  }
  shared_->free_when_full.reset();
  if (recovered.code() == absl::StatusCode::kResourceExhausted) {
    shared_->free_when_full = FreeBytes(path_);
  }
  return recovered;
}

absl::Status Store::ResumeWriting() {
  // Resume flushes what the failed writes left in memory and lets writes through again; on
  // a disk still full that flush fails, and so does this write. It may outlive the Store
  // (~Store leaves it the database and what is shared), and pins its instance meanwhile.
  return resumer_->Run([pin = std::make_shared<Pin>(Use()), shared = shared_] {
    const uint64_t reported = shared->errors->Reported();
    const rocksdb::Status resumed = pin->db().Resume();
    if (!resumed.ok() && !IsNoSpace(resumed)) {
      // RocksDB returns the error it stopped on again from then on, cause fixed or not.
      shared->resume_refused.store(true);
    }
    if (!resumed.ok()) return FromRocks(resumed, "resume writing");
    shared->errors->Handled(reported);
    return absl::OkStatus();
  });
}

absl::Status Store::ReplaceFailedInstance() {
  // A read-only open takes no lock, so it opens beside the failed instance, and it sees
  // everything that one acknowledged (its table files, and its log replayed).
  auto replacement = std::make_unique<Instance>();
  replacement->read_only = true;
  const rocksdb::Status opened =
      OpenInstance(path_, shared_->cache,
                   DatabaseOptions(shared_->logger, shared_->errors, options_.write_buffer_bytes,
                                   shared_->env.get()),
                   /*read_only=*/true, &replacement->handles, &replacement->db);
  if (!opened.ok()) {
    return FromRocks(opened,
                     "writes failed with an error RocksDB does not resume from, and opening "
                     "the database again failed too; each write tries again");
  }
  current_.store(replacement.get());
  instances_.push_back(std::move(replacement));
  spdlog::warn(
      "writes to {} failed with an error RocksDB does not resume from: reads go on from a "
      "read-only open, and each write opens the database for writing again until that works",
      path_);
  return ReopenForWriting();
}

absl::Status Store::ReopenForWriting() {
  if (!CloseRetired(options_.resume_wait)) {
    return absl::UnavailableError(
        "the store is reopening after a failed write, and reads that began before still use "
        "the failed database; writes resume once they end");
  }
  const uint64_t reported = shared_->errors->Reported();
  auto instance = std::make_unique<Instance>();
  const rocksdb::Status status =
      OpenInstance(path_, shared_->cache,
                   DatabaseOptions(shared_->logger, shared_->errors, options_.write_buffer_bytes,
                                   shared_->env.get()),
                   /*read_only=*/false, &instance->handles, &instance->db);
  if (!status.ok()) {
    return FromRocks(status,
                     "the cache database is open read-only (a full disk, or a failed write), "
                     "and opening it for writing failed; each write tries again");
  }
  RemoveEmptyLogs(*instance->db, path_);
  if (stop_compacting_.load()) instance->db->DisableManualCompaction();
  current_.store(instance.get());
  instances_.push_back(std::move(instance));
  // The errors counted so far were the replaced instances'.
  shared_->errors->Handled(reported);
  spdlog::info("reopened {} for writing", path_);
  CloseRetired(std::chrono::milliseconds(0));
  return absl::OkStatus();
}

bool Store::CloseRetired(std::chrono::milliseconds wait) {
  // Only the current instance takes new pins (Use), so one that is not current and has
  // none stays unused.
  const Instance* current = current_.load();
  const auto deadline = std::chrono::steady_clock::now() + wait;
  bool writable_open = false;
  for (auto it = instances_.begin(); it != instances_.end();) {
    Instance& instance = **it;
    if (&instance == current) {
      ++it;
      continue;
    }
    // A writable instance holds the database's lock until it closes.
    while (!instance.read_only && instance.users.load() > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (instance.users.load() > 0) {
      writable_open |= !instance.read_only;
      ++it;
      continue;
    }
    it = instances_.erase(it);
  }
  return !writable_open;
}

}  // namespace turbine::storage
