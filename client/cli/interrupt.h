// interrupt.h — SIGINT/SIGTERM end a blocking Watch cleanly instead of killing the process.
//
// The signal handler only writes a byte to a pipe (async-signal-safe); a helper thread
// reads it and cancels the watch, since Cancellation takes a lock.
//
// Thread-safety: one instance at a time per process (the handlers are process-wide).
#pragma once

#include <atomic>
#include <csignal>
#include <thread>

#include "turbine/client/client.h"

namespace turbine::cli {

class CancelOnInterrupt {
 public:
  // `cancel` is not owned and must outlive this object.
  explicit CancelOnInterrupt(client::Cancellation* cancel);
  // Restores the previous handlers.
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;

 private:
  void WaitForSignal();

  client::Cancellation* const cancel_;
  int pipe_[2] = {-1, -1};
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
  std::thread waiter_;
};

}  // namespace turbine::cli
