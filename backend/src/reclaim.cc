// reclaim.cc — the registry of section counters and the retire lists.
#include "reclaim.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <utility>

namespace turbine::internal {
namespace {

std::atomic<SectionCounter*> registry{nullptr};  // push-only list of every counter

// Set once this thread's counter went back: a thread_local destructor that runs later and
// opens a section gets a counter of its own, never returned, rather than one that another
// thread may have taken by then.
thread_local bool tls_counter_returned = false;

// CounterReturn gives this thread's counter back when the thread exits, for the next
// thread to register.
struct CounterReturn {
  SectionCounter* counter = nullptr;
  ~CounterReturn() {
    if (counter == nullptr) return;
    tls_counter_returned = true;
    tls_section.counter = nullptr;
    counter->in_use.store(false, std::memory_order_release);
  }
};
thread_local CounterReturn tls_counter_return;

long Membarrier(int command) { return syscall(__NR_membarrier, command, 0, 0); }

bool RegisterMembarrier() {
  const long commands = Membarrier(MEMBARRIER_CMD_QUERY);
  if (commands < 0 || (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

SectionCounter* RegisterSectionThread() {
  SectionCounter* counter = nullptr;
  for (SectionCounter* c = registry.load(std::memory_order_acquire); c != nullptr; c = c->next) {
    bool free = false;
    if (c->in_use.compare_exchange_strong(free, true, std::memory_order_acq_rel)) {
      counter = c;
      break;
    }
  }
  if (counter == nullptr) {
    counter = new SectionCounter;  // once per thread ever alive at one time; never freed
    counter->in_use.store(true, std::memory_order_relaxed);
    SectionCounter* head = registry.load(std::memory_order_relaxed);
    do {
      counter->next = head;
    } while (!registry.compare_exchange_weak(head, counter, std::memory_order_acq_rel));
  }
  if (!tls_counter_returned) tls_counter_return.counter = counter;
  return counter;
}

bool Reclaimer::Supported() {
  static const bool supported = RegisterMembarrier();
  return supported;
}

Reclaimer::~Reclaimer() {
  std::vector<Batch> batches;
  {
    MutexLock lock(&mu_);
    batches = std::move(batches_);
  }
}

void Reclaimer::Retire(std::vector<std::unique_ptr<TaskState>> tasks, size_t bytes) {
  if (tasks.empty()) return;
  Batch batch;
  batch.tasks = std::move(tasks);
  batch.bytes = bytes;
  // Every thread now runs a full barrier: a section whose store is not visible below
  // began after the unlinking and cannot find these records.
  if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) std::abort();  // Supported() said yes
  for (SectionCounter* c = registry.load(std::memory_order_acquire); c != nullptr; c = c->next) {
    const uint64_t value = c->value.load(std::memory_order_acquire);
    if (value % 2 == 1) batch.open.emplace_back(c, value);
  }
  MutexLock lock(&mu_);
  batches_.push_back(std::move(batch));
}

size_t Reclaimer::Poll() {
  std::vector<Batch> done;
  {
    MutexLock lock(&mu_);
    std::vector<Batch> waiting;
    for (Batch& batch : batches_) {
      std::erase_if(batch.open, [](const std::pair<SectionCounter*, uint64_t>& open) {
        return open.first->value.load(std::memory_order_acquire) != open.second;
      });
      (batch.open.empty() ? done : waiting).push_back(std::move(batch));
    }
    batches_ = std::move(waiting);
  }
  size_t freed = 0;
  for (const Batch& batch : done) freed += batch.tasks.size();
  return freed;  // `done` frees them here, outside the lock
}

size_t Reclaimer::PendingBytes() const {
  MutexLock lock(&mu_);
  size_t pending = 0;
  for (const Batch& batch : batches_) pending += batch.bytes;
  return pending;
}

}  // namespace turbine::internal
