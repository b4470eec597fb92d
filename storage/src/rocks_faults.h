// rocks_faults.h — how the store hears about RocksDB's faults, and where RocksDB logs.
//
// RocksDB writes its info log to a LOG file next to the data by default. On a full disk
// that file fails like any other, and RocksDB, logging the error it is handling, asserts
// on its own failed LOG writer. So its log goes to the process's log instead, and the
// store, not RocksDB, decides when to retry after a background error.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/listener.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace turbine::storage {

// NewProcessLogger returns a RocksDB logger that forwards to spdlog's default logger at
// debug level (fatal errors at error level): the store logs what matters to an operator.
std::shared_ptr<rocksdb::Logger> NewProcessLogger();

// BackgroundErrors records that RocksDB stopped writes (a failed write, flush or
// compaction), and turns RocksDB's automatic recovery off: that recovery polls free space
// on its own schedule and, while it waits, refuses a manual Resume. The store calls
// Resume itself before its next write instead, so a write succeeds as soon as the disk
// has room again.
//
// Errors are counted rather than flagged, so that one reported while the store resumes is
// not lost: Handled(count) covers only the errors seen before that resume began.
class BackgroundErrors : public rocksdb::EventListener {
 public:
  bool Pending() const { return Reported() != handled_.load(std::memory_order_acquire); }
  uint64_t Reported() const { return reported_.load(std::memory_order_acquire); }
  void Report() { reported_.fetch_add(1, std::memory_order_acq_rel); }
  void Handled(uint64_t reported) { handled_.store(reported, std::memory_order_release); }

  // LogAppendFailures counts the writes that failed appending to the log (store_recovery.cc:
  // such a log must not be written to again). Counted before Report.
  uint64_t LogAppendFailures() const { return log_append_failures_.load(std::memory_order_acquire); }
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status*) override {
    // kWriteCallback: a write's own failure, which for a write is its log append (the
    // memtable insert does no I/O).
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback) {
      log_append_failures_.fetch_add(1, std::memory_order_acq_rel);
    }
    Report();
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

 private:
  std::atomic<uint64_t> reported_{0};
  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> log_append_failures_{0};
};

}  // namespace turbine::storage
