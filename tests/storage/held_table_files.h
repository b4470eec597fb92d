// held_table_files.h — a file system whose table-file writes can be held up (and whose
// new log files can be refused), for tests.
//
// While held, every write to a table file (.sst: what a flush or compaction writes) waits
// until released. Everything else (the log, the manifest) goes through at once. It stands
// in for a RocksDB flush that does not finish, which a resume then waits for.
#pragma once

#include <rocksdb/file_system.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace turbine::testing {

class HeldTableFiles : public rocksdb::FileSystemWrapper {
 public:
  HeldTableFiles() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "HeldTableFiles"; }

  void Hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    held_ = false;
    released_.notify_all();
  }
  // Waiting tells whether a table-file write is waiting now.
  bool Waiting() {
    std::lock_guard lock(mu_);
    return waiting_ > 0;
  }
  // Writing tells whether a table file is open for writing (a flush or compaction runs).
  bool Writing() {
    std::lock_guard lock(mu_);
    return open_ > 0;
  }

  // RefuseNewLogs makes the creation of write-ahead log files fail as a directory without
  // write permission does (root passes every permission check, so a test cannot chmod).
  void RefuseNewLogs(bool refuse) {
    std::lock_guard lock(mu_);
    refuse_logs_ = refuse;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    if (name.ends_with(".log")) {
      std::lock_guard lock(mu_);
      if (refuse_logs_)
        return rocksdb::IOStatus::IOError("While open a file for appending: " + name,
                                          "Permission denied");
    }
    rocksdb::IOStatus status = target()->NewWritableFile(name, options, file, debug);
    if (status.ok() && name.ends_with(".sst")) {
      *file = std::make_unique<HeldFile>(std::move(*file), this);
      std::lock_guard lock(mu_);
      ++open_;
    }
    return status;
  }

 private:
  class HeldFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    HeldFile(std::unique_ptr<rocksdb::FSWritableFile> file, HeldTableFiles* owner)
        : FSWritableFileOwnerWrapper(std::move(file)), owner_(owner) {}
    ~HeldFile() override {
      std::lock_guard lock(owner_->mu_);
      --owner_->open_;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* debug) override {
      owner_->WaitWhileHeld();
      return FSWritableFileOwnerWrapper::Append(data, options, debug);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* debug) override {
      owner_->WaitWhileHeld();
      return FSWritableFileOwnerWrapper::Append(data, options, info, debug);
    }

   private:
    HeldTableFiles* owner_;
  };

  void WaitWhileHeld() {
    std::unique_lock lock(mu_);
    ++waiting_;
    released_.wait(lock, [this] { return !held_; });
    --waiting_;
  }

  std::mutex mu_;
  std::condition_variable released_;
  bool held_ = false;
  int waiting_ = 0;
  int open_ = 0;  // table files not yet closed
  bool refuse_logs_ = false;
};

}  // namespace turbine::testing
