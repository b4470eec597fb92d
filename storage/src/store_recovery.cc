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

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "resumer.h"
#include "store_internal.h"

namespace turbine::storage {
namespace {

constexpr std::chrono::milliseconds kReopenInterval{1000};

}  // namespace

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
  absl::Status recovered;
  if (ReadOnly()) {
    // An attempt is a whole open, a third of a second on a small machine, on the writer's
    // thread, and writes queue behind it: after one that failed for another reason than
    // space (which the free space above tells), the writes of the next second are refused
    // with its error at once.
    if (shared_->reopen_failed.has_value() &&
        std::chrono::steady_clock::now() - shared_->reopen_failed->first < kReopenInterval) {
      return shared_->reopen_failed->second;
    }
    recovered = ReopenForWriting(std::chrono::milliseconds(0));
  } else if (const uint64_t failures = shared_->errors->LogAppendFailures();
             failures > shared_->log_failures_handled) {
    shared_->log_failures_handled = failures;
    // RocksDB 7.8 resumes from a failed log append by flushing the memtables, which starts
    // a new log; with nothing in them to flush it keeps the log whose writer saw the
    // error, and the next append to it aborts the process (an assertion compiled into
    // Debian's build; RocksDB fixed it in 9.x by never writing to such a log again).
    // Reopened, the database replays that log and starts a new one.
    recovered = ReplaceFailedInstance("a write failed appending to the log");
  } else {
    recovered = ResumeWriting();
    if (!recovered.ok() && shared_->resume_refused.exchange(false)) {
      recovered = ReplaceFailedInstance("writes failed with an error RocksDB does not resume from");
    }
  }
  shared_->free_when_full.reset();
  shared_->reopen_failed.reset();
  if (recovered.code() == absl::StatusCode::kResourceExhausted) {
    shared_->free_when_full = FreeBytes(path_);
  } else if (!recovered.ok() && ReadOnly()) {
    shared_->reopen_failed.emplace(std::chrono::steady_clock::now(), recovered);
  }
  return recovered;
}

absl::Status Store::ResumeWriting() {
  // Resume flushes what the failed writes left in memory and lets writes through again; on
  // a disk still full that flush fails, and so does this write. It may outlive the Store
  // (~Store leaves it the database and what is shared), and pins its instance meanwhile.
  return resumer_->Run("resume", [pin = std::make_shared<Pin>(Use()), shared = shared_]() mutable {
    const uint64_t reported = shared->errors->Reported();
    const rocksdb::Status resumed = pin->db().Resume();
    // Let go here, not with the closure: the Store may end once this returns.
    pin.reset();
    if (!resumed.ok() && !IsNoSpace(resumed)) {
      // RocksDB returns the error it stopped on again from then on, cause fixed or not.
      shared->resume_refused.store(true);
    }
    if (!resumed.ok()) return FromRocks(resumed, "resume writing");
    shared->errors->Handled(reported);
    return absl::OkStatus();
  });
}

absl::Status Store::ReplaceFailedInstance(std::string_view why) {
  // A read-only open takes no lock, so it opens beside the failed instance, and it sees
  // everything that one acknowledged (its table files, and its log replayed).
  auto replacement = std::make_unique<Instance>();
  replacement->read_only = true;
  const rocksdb::Status opened =
      OpenInstance(path_, shared_->cache, InstanceOptions(), /*read_only=*/true,
                   &replacement->handles, &replacement->db);
  if (!opened.ok()) {
    return FromRocks(opened, std::string(why) +
                                 ", and opening the database again failed too; each write "
                                 "tries again");
  }
  current_.store(replacement.get());
  instances_.push_back(std::move(replacement));
  spdlog::warn(
      "{} ({}): reads go on from a read-only open, and each write opens the database for "
      "writing again until that works",
      why, path_);
  return ReopenForWriting(options_.resume_wait);
}

absl::Status Store::ReopenForWriting(std::chrono::milliseconds wait) {
  // Opened by a job whose writer had stopped waiting: the next write installs it.
  if (std::unique_ptr<Instance> opened = TakeOpened(); opened != nullptr) {
    return Install(std::move(opened));
  }
  std::vector<Instance*> closing;
  if (!CloseRetired(wait, &closing)) {
    return absl::UnavailableError(
        "the store is reopening after a failed write, and reads that began before still use "
        "the failed database; writes resume once they end");
  }
  // Closing the failed instance flushes, and opening writes (the log replayed into a table
  // file): either may wait for a flush that never finishes, as a resume may (resumer.h).
  // So both run on the resumer's thread, waited for the same bounded time.
  absl::Status opened = resumer_->Run(
      "reopen", [closing, shared = shared_, path = path_, options = InstanceOptions()] {
        for (Instance* instance : closing) instance->Close();
        {
          // One opened by the job before, finished after its writer last looked.
          std::lock_guard lock(shared->opened_mu);
          if (shared->opened != nullptr) return absl::OkStatus();
        }
        const uint64_t reported = shared->errors->Reported();
        const uint64_t log_failures = shared->errors->LogAppendFailures();
        auto instance = std::make_unique<Instance>();
        const rocksdb::Status status = OpenInstance(path, shared->cache, options,
                                                    /*read_only=*/false, &instance->handles,
                                                    &instance->db);
        if (!status.ok()) {
          return FromRocks(status,
                           "the cache database is open read-only (a full disk, or a failed "
                           "write), and opening it for writing failed; each write tries again");
        }
        RemoveEmptyLogs(*instance->db, path);
        std::lock_guard lock(shared->opened_mu);
        shared->opened = std::move(instance);
        shared->opened_reported = reported;
        shared->opened_log_failures = log_failures;
        return absl::OkStatus();
      });
  std::unique_ptr<Instance> instance = TakeOpened();
  if (!opened.ok() && instance == nullptr) return opened;  // else: a job before this one's
  if (instance == nullptr) return absl::UnavailableError("the store is reopening; try again");
  return Install(std::move(instance));
}

std::unique_ptr<Store::Instance> Store::TakeOpened() {
  std::lock_guard lock(shared_->opened_mu);
  return std::move(shared_->opened);
}

absl::Status Store::Install(std::unique_ptr<Instance> instance) {
  rocksdb::DB& db = *instance->db;
  current_.store(instance.get());
  instances_.push_back(std::move(instance));
  // After it is current: a StopCompacting meanwhile reached the one before.
  if (stop_compacting_.load()) db.DisableManualCompaction();
  {
    // The errors counted before it opened were the replaced instances'.
    std::lock_guard lock(shared_->opened_mu);
    shared_->errors->Handled(shared_->opened_reported);
    shared_->log_failures_handled =
        std::max(shared_->log_failures_handled, shared_->opened_log_failures);
  }
  shared_->resume_refused.store(false);
  spdlog::info("reopened {} for writing", path_);
  std::vector<Instance*> unused;
  CloseRetired(std::chrono::milliseconds(0), &unused);  // the read-only one, if unused
  return absl::OkStatus();
}

bool Store::CloseRetired(std::chrono::milliseconds wait, std::vector<Instance*>* writable) {
  // Only the current instance takes new pins (Use), so one that is not current and has
  // none stays unused. Closed, it stays in instances_ (store_internal.h says why).
  const Instance* current = current_.load();
  const auto deadline = std::chrono::steady_clock::now() + wait;
  bool unpinned = true;
  for (const std::unique_ptr<Instance>& instance : instances_) {
    if (instance.get() == current || instance->closed.load()) continue;
    if (instance->read_only) {
      if (instance->users.load() == 0) instance->Close();
      continue;
    }
    // A writable instance holds the database's lock until it closes.
    while (instance->users.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (instance->users.load() > 0) {
      unpinned = false;
      continue;
    }
    writable->push_back(instance.get());
  }
  return unpinned;
}

}  // namespace turbine::storage
