// change_listeners.h — the engine's change listeners (Engine::AddChangeListener).
//
// A listener runs with no lock held, so it may change inputs (whose change notifies the
// listeners again, itself included) or remove a listener, itself too. Remove, called
// outside any listener, waits for the calls of that listener running on other threads:
// once it returns, nothing calls it, and its callable is destroyed. Called from inside a
// listener of the same ChangeListeners it does not wait (two listeners removing each other
// would wait for each other): no call begins after it, but one already running on another
// thread may go on.
//
// Thread-safety: all methods are safe from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace turbine::internal {

class ChangeListeners {
 public:
  uint64_t Add(std::function<void()> listener);
  void Remove(uint64_t id);
  // Notify calls every listener added before it began and not removed meanwhile.
  void Notify();

 private:
  struct Entry {
    uint64_t id = 0;
    std::function<void()> call;
    int calls = 0;         // calls running now; guarded by mu_
    bool removed = false;  // guarded by mu_
  };

  std::mutex mu_;
  std::condition_variable call_ended_;
  uint64_t next_id_ = 1;
  std::vector<std::shared_ptr<Entry>> entries_;
};

}  // namespace turbine::internal
