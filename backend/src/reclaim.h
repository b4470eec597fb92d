// reclaim.h — freeing task records that other threads may still be looking at.
//
// Whole-task eviction (evict.cc) takes a task out of the cache and the task table, but a
// thread that found it there a moment before may be about to lock it. Every thread that
// looks tasks up does so inside a Section, and a retired record is freed only once every
// section that was open when it was retired has ended: epoch-based reclamation.
//
// Entering and leaving a section is a relaxed store to a counter the thread owns (odd
// inside): a cache hit must not pay for eviction with a fence. The reclaimer pays
// instead: after unlinking, it makes every running thread of the process execute a full
// memory barrier (membarrier(2), "private expedited"), so each thread either had its
// section's store visible before the barrier, and is waited for, or loads from the maps
// after it, and cannot find what was unlinked. Where the kernel lacks that command,
// Supported() is false and nothing is ever retired.
//
// Rule for the engine: a pointer to a task is only held inside a section, or where the
// task cannot be evicted (it runs, it is waited for, or a count of callers holds it). No
// structure that outlives a section may point at an evictable task: such structures hold
// ids (executor hints, waits-for chains) or are purged at eviction (trusted restores).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "mutex.h"
#include "task_state.h"

namespace turbine::internal {

struct alignas(64) SectionCounter {
  std::atomic<uint64_t> value{0};  // odd while the owning thread is inside a section
  std::atomic<bool> in_use{false};
  SectionCounter* next = nullptr;  // the registry's list; never unlinked
};

struct SectionState {
  SectionCounter* counter = nullptr;
  uint32_t depth = 0;
};
// Trivially destructible, so that reaching it costs no guard on the hit path; the
// counter is handed back at thread exit by a separate thread_local (reclaim.cc).
inline thread_local SectionState tls_section;

SectionCounter* RegisterSectionThread();

// Section: while one is open on this thread, no task record it finds is freed. Nests;
// only the outermost one counts.
class Section {
 public:
  Section() {
    SectionState& state = tls_section;
    if (state.depth++ != 0) return;
    if (state.counter == nullptr) [[unlikely]] state.counter = RegisterSectionThread();
    state.counter->value.store(state.counter->value.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
    // Loads below must not move above the store (the compiler's side of the barrier; the
    // processor's is the reclaimer's membarrier).
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~Section() {
    SectionState& state = tls_section;
    if (--state.depth != 0) return;
    // Release: what the section read of a record happens before the record is freed.
    state.counter->value.store(state.counter->value.load(std::memory_order_relaxed) + 1,
                               std::memory_order_release);
  }
  Section(const Section&) = delete;
  Section& operator=(const Section&) = delete;
};

// InSection tells whether this thread is inside a section (for assertions).
inline bool InSection() { return tls_section.depth != 0; }

// Reclaimer holds one engine's retired task records until no section can see them.
// Thread-safety: all methods are safe from any thread.
class Reclaimer {
 public:
  Reclaimer() = default;
  ~Reclaimer();  // frees everything: the engine is gone, nobody can be looking
  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  // Supported: the kernel can make other threads' section stores visible (membarrier).
  static bool Supported();
  // Retire takes records already unlinked from every structure a section could find them
  // in, and about how many bytes they hold. They are freed by a later Poll (or the
  // destructor).
  void Retire(std::vector<std::unique_ptr<TaskState>> tasks, size_t bytes);
  // Poll frees the records no open section can still see; returns how many.
  size_t Poll();
  // PendingBytes: the bytes of records retired and not freed yet.
  size_t PendingBytes() const;

 private:
  struct Batch {
    std::vector<std::unique_ptr<TaskState>> tasks;
    size_t bytes = 0;
    // The sections open at retirement: a counter and the odd value it had then.
    std::vector<std::pair<SectionCounter*, uint64_t>> open;
  };
  mutable Mutex mu_;
  std::vector<Batch> batches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turbine::internal
