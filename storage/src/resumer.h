// resumer.h — RocksDB's resume after a failed write, on a thread of its own.
//
// After a write fails (a full disk), the store asks RocksDB to resume before its next
// write. A resume flushes the memtables first, and RocksDB 7.8 can wait in it for good: a
// flush that failed and was rolled back is never scheduled again, and the resume waits for
// it with every background thread idle (seen on a full tmpfs). A write must not wait with
// it: the resume runs here, writers wait for it a bounded time, and once that time has
// passed they are refused at once until it returns.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace turbine::storage {

class Resumer {
 public:
  // `wait`: how long after a resume began writers wait for it.
  explicit Resumer(std::chrono::milliseconds wait);
  // Leaves a resume still running to finish alone (Finish said so first).
  ~Resumer();
  Resumer(const Resumer&) = delete;
  Resumer& operator=(const Resumer&) = delete;

  // Run starts `resume` on a new thread unless one is running, and waits until it returns
  // or until `wait` after it began: its status, or kUnavailable if it has not returned.
  // A failure of a resume that returned after its writers stopped waiting is returned once
  // instead of starting another. `resume` must not use what may end before it does
  // (Finish). `what` names it in the log ("resume", "reopen"), which says when one is
  // late and when a late one returns.
  absl::Status Run(std::string_view what, std::function<absl::Status()> resume);
  // Running tells whether a resume has begun and not returned.
  bool Running() const;
  // Finish waits for a running resume to return, until `wait` after it began; false if it
  // still has not (then what it uses must be left to it: the database cannot be closed
  // under it).
  bool Finish();

 private:
  struct State;  // shared with the thread, which may outlive the Resumer
  const std::chrono::milliseconds wait_;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace turbine::storage
