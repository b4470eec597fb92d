// change_listeners.cc — change listeners called without a lock held (change_listeners.h).
#include "change_listeners.h"

#include <algorithm>
#include <utility>

namespace turbine::internal {
namespace {

// The listeners this thread is inside (of which ChangeListeners), innermost last.
struct Running {
  const ChangeListeners* owner;
  const void* entry;
};
thread_local std::vector<Running> tls_running;

}  // namespace

uint64_t ChangeListeners::Add(std::function<void()> listener) {
  auto entry = std::make_shared<Entry>();
  entry->call = std::move(listener);
  std::lock_guard lock(mu_);
  entry->id = next_id_++;
  entries_.push_back(std::move(entry));
  return entries_.back()->id;
}

void ChangeListeners::Remove(uint64_t id) {
  std::unique_lock lock(mu_);
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [id](const std::shared_ptr<Entry>& entry) { return entry->id == id; });
  if (it == entries_.end()) return;
  const std::shared_ptr<Entry> entry = *it;
  entries_.erase(it);
  entry->removed = true;
  // From inside a listener's call it does not wait: two listeners removing each other on
  // two threads would each wait for the other's call for ever.
  if (std::any_of(tls_running.begin(), tls_running.end(),
                  [this](const Running& running) { return running.owner == this; })) {
    return;
  }
  call_ended_.wait(lock, [&] { return entry->calls == 0; });
  // Nothing calls it any more: what it holds ends here, not on whichever thread lets go of
  // the entry last.
  std::function<void()> ended = std::move(entry->call);
  lock.unlock();
}

void ChangeListeners::Notify() {
  std::vector<std::shared_ptr<Entry>> now;
  {
    std::lock_guard lock(mu_);
    if (entries_.empty()) return;
    now = entries_;
  }
  for (const std::shared_ptr<Entry>& entry : now) {
    tls_running.reserve(tls_running.size() + 1);  // the push below cannot throw
    {
      // Counted only from here: a listener called before it that removes it, on this
      // thread, must not wait for this call, which has not begun and now never will.
      std::lock_guard lock(mu_);
      if (entry->removed) continue;
      ++entry->calls;
    }
    struct Ended {  // however the call ends
      ChangeListeners* listeners;
      Entry* entry;
      ~Ended() {
        tls_running.pop_back();
        std::lock_guard lock(listeners->mu_);
        --entry->calls;
        if (entry->removed) listeners->call_ended_.notify_all();
      }
    };
    tls_running.push_back({this, entry.get()});
    const Ended ended{this, entry.get()};
    entry->call();
  }
}

}  // namespace turbine::internal
