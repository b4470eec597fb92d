// evict.cc — keeping the engine under its memory limit: the values of large results the
// store holds leave memory, and come back from the store when read.
//
// Only values go. The task stays, clean, with its stamps (phase kEvicted): verifications of
// its readers compare stamps and need no value, invalidations pass through it like a clean
// task, and a read of the value claims it and the refresh loads it back (refresh.cc). So an
// evicted result is never executed again because it was evicted, and no reader can be left
// clean over a change that went through it.
//
// When values are not enough, whole tasks go too (EvictTasks): clean ones the store holds
// exactly as they are and no task in memory reads. They leave the cache and the task table
// as if this process had never loaded them; the next use loads them back from the store,
// trusted or verified like any restored task (TrustRestored), never executed because they
// were evicted. Their records are freed once no thread can still be looking (reclaim.h).
//
// Which values go is decided by CLOCK over the candidates (results whose stored form is at
// least MemoryOptions::large_value_bytes, listed when a snapshot writes them): a read sets
// the task's `referenced` bit, which it does under the task lock it holds anyway, and the
// hand spares a referenced task once and clears its bit. A hit pays nothing else.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine::internal {
namespace {

// MibText is `bytes` in MiB with one decimal, or in bytes under one MiB: whole MiB read
// "32 MiB stays over the limit (32 MiB)" for a set just over its limit, and "0 MiB" for a
// limit under one.
std::string MibText(uint64_t bytes) {
  if (bytes < (1 << 20)) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// The most tasks one EvictTasks looks at (Engine::EvictTasks).
constexpr size_t kEvictionStretch = size_t{1} << 16;

// HeapInUse is glibc's count of bytes allocated and not freed, mmapped blocks included:
// the engine's tasks and values, and the store's caches and memtables, which allocate
// through malloc too. Unlike the resident set it does not count memory freed and kept by
// the allocator, which eviction cannot give back.
size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// ResidentBytes is the process's resident set (/proc/self/statm), what the limit bounds:
// the heap, the pages the allocator keeps after frees, thread stacks and the mapped code.
// The heap in use where /proc cannot be read.
size_t ResidentBytes() {
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  char text[128];
  const ssize_t length = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
  if (fd >= 0) close(fd);
  unsigned long size_pages = 0;
  unsigned long resident_pages = 0;
  if (length <= 0) return HeapInUse();
  text[length] = '\0';
  if (std::sscanf(text, "%lu %lu", &size_pages, &resident_pages) != 2) return HeapInUse();
  return static_cast<size_t>(resident_pages) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// StoredAsIs: the store holds exactly this task's result (written, nothing pending), so
// what leaves memory comes back from it. An input's value is in the inputs table, written
// before it was applied; its task record is its identity.
bool StoredAsIs(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  return task.persisted && !task.unwritten && !task.persist_queued;
}

// OwnCell is the cell of its own that the task's output refers to (fs.read of a racy file
// holds the file's bytes there), or null.
const CellSlot* OwnCell(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (task.output.kind() != OutputKind::kRef || task.output.ref().task != task.id) return nullptr;
  return task.FindCell(task.output.ref().type, task.output.ref().index);
}

// SmallValue: the task's value is small, held in place (Output::in_place), or in its own
// cell and of a type that would be (ValueType::inline_size): evicting it frees nothing worth
// a reload, whatever the size of its record (a large one read many tasks).
bool SmallValue(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (task.output.in_place()) return true;
  const CellSlot* own = OwnCell(task);
  return own != nullptr && ValueTypeById(own->type)->inline_size != 0;
}

// Evictable tells whether the task's values may leave memory now. Not an input's: its task
// record does not hold it, so it leaves only with the whole task. Nor a small value
// (SmallValue), with its cells: evicted, they would send every read of the output, which is
// in memory, through a reload from the store. An output that refers to one of the task's
// own cells has its value there: the cells leave. (Kept before, a file read within a second
// of its last change stayed in memory past any limit.)
// ValuesMayLeave is Evictable but for where the values come back from: the store, or,
// for a task a GC pass removed from it, an execution.
bool ValuesMayLeave(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (task.phase != Phase::kClean || task.fn->kind == FunctionKind::kInput || SmallValue(task)) {
    return false;
  }
  if (const CellSlot* own = OwnCell(task)) return own->value != nullptr;
  return task.output.kind() == OutputKind::kValue && task.output.data() != nullptr;
}
bool Evictable(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  return StoredAsIs(task) && ValuesMayLeave(task);
}

// DropValuesLocked takes the task's values out (into `dropped`, to be destroyed after its
// lock is released): it is kEvicted from then on.
void DropValuesLocked(TaskState& task, std::vector<std::shared_ptr<const void>>* dropped)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (task.output.kind() == OutputKind::kValue) {
    dropped->push_back(std::move(task.output.mutable_value()));
  }
  for (CellSlot& cell : task.cells()) dropped->push_back(std::move(cell.value));
  task.phase = Phase::kEvicted;
}

// EvictableWhole tells whether the whole task may leave memory now: the store holds it
// exactly as it is (its last-use day is written as it leaves); nothing in memory needs its
// record (nobody waits for it, counts on it, or settles a cycle through it; its readers in
// memory are checked apart); and loading it back is all it takes to have it again. Clean,
// or restored and never verified since (dirty and unlinked: a trusted result that a
// change reached): a restore decides again what it decided. Not a
// session-dependent task: its observation's doubt (observed_.doubted) is dropped when
// it commits, even while an invalidation that came meanwhile has it execute again, which
// only a task in memory remembers. Not an input whose read of the store failed: the retry
// (retry.cc) finds it in memory; nor one a set is being applied to (`set_pending`).
bool EvictableWhole(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  const bool restored_unread = task.phase == Phase::kDirty && task.unlinked;
  // Never ran and stored as its identity alone (a task only described, AddToSnapshot):
  // what comes back is the same task waiting to run.
  const bool never_ran =
      task.phase == Phase::kScheduled && task.output.kind() == OutputKind::kNone;
  const bool has_result = StampsCurrent(task.phase) || restored_unread;
  // A session-dependent one with a result stays (above); one that never ran observed nothing.
  return !task.gone && (has_result ? task.output.kind() != OutputKind::kNone : never_ran) &&
         StoredAsIs(task) && (!task.fn->session_dependent || !has_result) && !task.stale &&
         !task.must_execute && !task.reload_only && task.waiters == nullptr &&
         task.callers == 0 && !task.in_cycle && !task.set_pending &&
         (task.fn->kind != FunctionKind::kInput || !IsTransientFailure(task.output));
}

// Footprint estimates the heap a task record holds: the record, its argument tuple, its
// slots in the cache and the table, its edges and cells, a small value.
size_t Footprint(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  return kTaskRecordBytes + task.deps().size() * sizeof(Dep) +
         task.cells().size() * kCellBytes + task.dependents.HeapBytes();
}

// InstallValues puts the stored values back where the task's are missing, if the stored
// result is the one the task holds: the same stamps (a stamp names one value for ever).
bool InstallValues(TaskState& task, DecodedResult& stored) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (task.output.kind() == OutputKind::kValue && task.output.data() == nullptr) {
    if (stored.output.kind() != OutputKind::kValue || stored.output.type() != task.output.type() ||
        stored.stamp != task.output_changed_at) {
      return false;
    }
    task.output = std::move(stored.output);  // the same value, boxed as it was
  }
  for (CellSlot& cell : task.cells()) {
    if (cell.value != nullptr) continue;
    auto it = std::find_if(stored.cells.begin(), stored.cells.end(), [&](const CellSlot& s) {
      return s.type == cell.type && s.index == cell.index && s.changed_at == cell.changed_at;
    });
    if (it == stored.cells.end()) return false;
    cell.value = std::move(it->value);
  }
  return true;
}

}  // namespace

void EngineImpl::NoteEvictionCandidates(const std::vector<StoredTask>& written) {
  if (memory_.limit_bytes == 0) return;
  MutexLock lock(&eviction_.mu);
  for (const StoredTask& record : written) {
    if (record.result.empty()) continue;  // its identity alone: the result is as it was
    const bool large = record.result.size() >= memory_.large_value_bytes;
    auto listed = eviction_.candidate_index.find(record.id);
    if (listed != eviction_.candidate_index.end()) {
      if (large) {
        eviction_.candidates[listed->second].bytes = record.result.size();  // what it frees now
      } else {
        DropCandidateLocked(listed->second);
      }
    } else if (large) {
      eviction_.candidate_index.emplace(record.id, eviction_.candidates.size());
      eviction_.candidates.push_back(EvictionCandidate{record.id, record.result.size()});
    }
  }
}

void EngineImpl::DropCandidateLocked(size_t index) {
  eviction_.candidate_index.erase(eviction_.candidates[index].id);
  if (index + 1 != eviction_.candidates.size()) {
    eviction_.candidates[index] = eviction_.candidates.back();
    eviction_.candidate_index[eviction_.candidates[index].id] = index;
  }
  eviction_.candidates.pop_back();
}

size_t EngineImpl::EvictValues(size_t bytes) {
  // Not while a snapshot's chunk is being written: it marks its tasks stored before the
  // write, which may still fail or hold some of them back; nor while a GC pass deletes
  // records.
  MutexLock flushing(&flush_mu_);
  return EvictValuesLocked(bytes);
}

// AskedFor ends an eviction's trace reason: how much it was asked to free.
static std::string AskedFor(size_t bytes) {
  return " (asked for " + (bytes == SIZE_MAX ? std::string("all") : std::to_string(bytes)) + ")";
}

size_t EngineImpl::EvictValuesLocked(size_t bytes) {
  const auto start = std::chrono::steady_clock::now();
  size_t evicted = 0;
  const size_t freed = RunClock(bytes, &evicted);
  if (evicted > 0 && tracing()) [[unlikely]] {
    TraceEviction(start, "evicted " + std::to_string(evicted) + " values, " +
                             std::to_string(freed) + " bytes as stored" + AskedFor(bytes));
  }
  return freed;
}

void EngineImpl::TraceEviction(std::chrono::steady_clock::time_point start, std::string reason) {
  TraceEvent event;
  event.kind = TraceEvent::Kind::kEviction;
  event.reason = std::move(reason);
  event.start_nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
  event.duration_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
  RecordTrace(std::move(event));
}

size_t EngineImpl::RunClock(size_t bytes, size_t* evicted) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  MutexLock lock(&eviction_.mu);
  size_t freed = 0;
  // Twice round: the first pass may only clear referenced bits.
  const size_t steps = 2 * eviction_.candidates.size();
  for (size_t step = 0; step < steps && freed < bytes; ++step) {
    if (eviction_.candidates.empty()) break;
    if (eviction_.clock_hand >= eviction_.candidates.size()) eviction_.clock_hand = 0;
    const EvictionCandidate candidate = eviction_.candidates[eviction_.clock_hand];
    TaskState* task = tasks_.Get(candidate.id);
    if (task == nullptr) {
      // Evicted whole or collected: off the list (the last candidate moves here, and the
      // hand looks at it next).
      DropCandidateLocked(eviction_.clock_hand);
      continue;
    }
    ++eviction_.clock_hand;
    // Destroyed after the task's lock is released: a large value takes a while to free.
    std::vector<std::shared_ptr<const void>> dropped;
    {
      MutexLock task_lock(&task->mu);
      if (SmallValue(*task)) {
        // A large record of a small value (it read many tasks): never evictable, so off the
        // list, or every pass would step over it again.
        DropCandidateLocked(--eviction_.clock_hand);
        continue;
      }
      if (!Evictable(*task)) continue;
      if (task->referenced) {
        task->referenced = false;
        continue;
      }
      DropValuesLocked(*task, &dropped);
    }
    freed += candidate.bytes;
    ++*evicted;
    counts.evicted_values.fetch_add(1, std::memory_order_relaxed);
    counts.evicted_value_bytes.fetch_add(candidate.bytes, std::memory_order_relaxed);
  }
  return freed;
}

size_t EngineImpl::EvictTasks(size_t bytes) {
  // As EvictValues: not while a snapshot marks tasks stored, nor during a GC pass.
  MutexLock flushing(&flush_mu_);
  return EvictTasksLocked(bytes);
}

size_t EngineImpl::EvictTasksLocked(size_t bytes, bool* cut_short) {
  if (cut_short != nullptr) *cut_short = false;
  if (store_ == nullptr || !Reclaimer::Supported()) return 0;
  const auto began = std::chrono::steady_clock::now();
  MutexLock lock(&eviction_.mu);
  Section section;
  std::vector<std::unique_ptr<TaskState>> victims;
  std::vector<LastUse> uses;  // last-use days the store does not have yet
  size_t freed = 0;
  // Twice round at most: the first pass may only clear referenced bits. The hand moves over
  // the tasks in memory (TaskTable::NextFrom), not over every id the store ever gave out,
  // and over kEvictionStretch of them at most: snapshots wait for flush_mu_ meanwhile, and a
  // million tasks of which few may leave would hold it for a tenth of a second. The next
  // call goes on from there.
  const TaskId start = eviction_.task_hand;
  size_t visited = 0;
  for (int wraps = 0; freed < bytes && visited < kEvictionStretch;) {
    TaskId id = eviction_.task_hand;
    TaskState* task = tasks_.NextFrom(&id);
    if (task == nullptr) {
      if (++wraps > 2) break;  // an empty table ends here
      eviction_.task_hand = 1;
      continue;
    }
    if (wraps == 2 && id >= start) break;  // back where it started, the second time
    eviction_.task_hand = id + 1;
    ++visited;
    {
      MutexLock task_lock(&task->mu);
      if (!EvictableWhole(*task)) continue;
      // A large value still in memory leaves by itself first (EvictValues' hand).
      if (Evictable(*task) && eviction_.candidate_index.contains(id)) continue;
      if (task->referenced) {
        task->referenced = false;
        continue;
      }
      // A reader in memory is linked to it: a change reaching it must go on to that
      // reader, and only this record knows the way. Readers go first; it follows later.
      if (ReadInMemory(*task)) continue;
      const uint16_t day = task->used_day.load(std::memory_order_relaxed);
      if (day != task->stored_day) uses.push_back(LastUse{id, day});
      freed += TakeOutLocked(*task, &victims);
    }
    // Not under the task's lock: the cache's shard lock comes first when a task is
    // created. Until it is out, a lookup may find it there, see `gone` and look again.
    cache_.Erase(task);
  }
  if (cut_short != nullptr) *cut_short = freed < bytes && visited >= kEvictionStretch;
  const size_t evicted = victims.size();
  {
    MutexLock writer(&input_writer_mu_);  // RetireEvictedLocked's trusted_ list
    RetireEvictedLocked(std::move(victims), uses, freed);
  }
  if (evicted > 0 && tracing()) [[unlikely]] {
    TraceEviction(began, "evicted " + std::to_string(evicted) + " whole tasks, about " +
                             std::to_string(freed) + " bytes of memory" + AskedFor(bytes));
  }
  return freed;
}

size_t EngineImpl::EvictUnsetInputs() {
  if (store_ == nullptr || !Reclaimer::Supported()) return 0;
  const auto start = std::chrono::steady_clock::now();
  size_t evicted = 0;
  // A stretch at a time, as EvictTasksLocked: snapshots and sets wait for one at most.
  for (TaskId from = 1; from != kNoTask;) {
    MutexLock flushing(&flush_mu_);
    MutexLock lock(&eviction_.mu);
    MutexLock writer(&input_writer_mu_);  // no input is set or unset meanwhile
    Section section;
    std::vector<std::unique_ptr<TaskState>> victims;
    std::vector<LastUse> uses;
    size_t freed = 0;
    TaskId id = from;
    from = kNoTask;
    for (size_t visited = 0;; ++visited) {
      if (visited == kEvictionStretch) {
        from = id;  // the next stretch goes on from here
        break;
      }
      TaskState* task = tasks_.NextFrom(&id);
      if (task == nullptr) break;
      ++id;
      if (task->fn->kind != FunctionKind::kInput) continue;
      {
        MutexLock task_lock(&task->mu);
        if (!EvictableWhole(*task) || ReadInMemory(*task) ||
            !task->output.SameAs(NotSetOutput(InputKeyOf(*task)))) {
          continue;
        }
        const uint16_t day = task->used_day.load(std::memory_order_relaxed);
        if (day != task->stored_day) uses.push_back(LastUse{task->id, day});
        freed += TakeOutLocked(*task, &victims);
      }
      cache_.Erase(task);  // as EvictTasksLocked: not under the task's lock
    }
    evicted += victims.size();
    RetireEvictedLocked(std::move(victims), uses, freed);
  }
  if (evicted > 0 && tracing()) [[unlikely]] {
    TraceEviction(start, "evicted " + std::to_string(evicted) +
                             " unset inputs nothing in memory reads (for garbage collection)");
  }
  return evicted;
}

void EngineImpl::RetireEvictedLocked(std::vector<std::unique_ptr<TaskState>> victims,
                                     const std::vector<LastUse>& uses, size_t freed) {
  if (victims.empty()) return;
  // A GC pass scanning the store now sees their last use as its snapshot had it, and them
  // not in memory: what leaves memory during a pass is kept by it, like what a snapshot
  // writes meanwhile.
  if (collecting_) {
    for (const auto& victim : victims) kept_while_collecting_.push_back(victim->id);
  }
  // Not synced, as a snapshot's. If it fails, the tasks only look older to a GC pass than
  // they are (a task it removes too early is computed again when next asked for).
  if (!uses.empty()) store_->WriteLastUse(uses).IgnoreError();
  {
    // Trusted restores are listed by pointer (DistrustRestored): the list forgets these
    // before they are retired. DistrustRestored runs under input_writer_mu_, so none is
    // halfway through the list now.
    absl::flat_hash_set<const TaskState*> evicted;
    for (const auto& victim : victims) evicted.insert(victim.get());
    MutexLock trust(&trust_mu_);
    std::erase_if(trusted_, [&](const Trusted& entry) { return evicted.contains(entry.task); });
  }
  {
    MutexLock ids(&eviction_.evicted_ids_mu);
    for (const auto& victim : victims) {
      uint64_t& word = eviction_.evicted_ids[victim->id / 64];
      const uint64_t bit = uint64_t{1} << (victim->id % 64);
      if ((word & bit) == 0) eviction_.evicted_away.fetch_add(1, std::memory_order_relaxed);
      word |= bit;
    }
  }
  counts.evicted_tasks.fetch_add(victims.size(), std::memory_order_relaxed);
  reclaimer_.Retire(std::move(victims), freed);
}

void EngineImpl::DropValuesOfCollected(std::span<const TaskId> ids) {
  for (TaskId id : ids) {
    TaskState* task = tasks_.Get(id);
    if (task == nullptr) continue;
    std::vector<std::shared_ptr<const void>> dropped;  // freed after the lock
    MutexLock lock(&task->mu);
    // One a task in memory still reads keeps them: that reader is not garbage, whatever the
    // store said.
    if (!ValuesMayLeave(*task) || ReadInMemory(*task)) continue;
    DropValuesLocked(*task, &dropped);
  }
}

bool EngineImpl::ReadInMemory(const TaskState& task) {
  return task.dependents.Any(
      [&](const Dependent& dependent) { return tasks_.Get(dependent.reader) != nullptr; });
}

size_t EngineImpl::TakeOutLocked(TaskState& task,
                                 std::vector<std::unique_ptr<TaskState>>* victims) {
  // Out of the table first: a call that misses in the cache from here on loads it back
  // under its id (UsableStoredId), or finds it not stored. Whoever holds a pointer to it
  // sees `gone` and looks the id up again; nothing changes it any more.
  const size_t footprint = Footprint(task);
  counts.edge_count.fetch_sub(static_cast<int64_t>(task.dependents.size()),
                              std::memory_order_relaxed);
  counts.cell_count.fetch_sub(static_cast<int64_t>(task.cells().size()), std::memory_order_relaxed);
  counts.task_count.fetch_sub(1, std::memory_order_relaxed);
  task.gone = true;
  victims->push_back(tasks_.Remove(task.id));
  return footprint;
}

size_t EngineImpl::EvictLocked(size_t bytes, bool* cut_short) {
  // Values first: a large value frees the most for the least. Then whole tasks.
  if (cut_short != nullptr) *cut_short = false;
  const size_t freed = EvictValuesLocked(bytes);
  return freed < bytes ? freed + EvictTasksLocked(bytes - freed, cut_short) : freed;
}

bool EngineImpl::ForgetEvictedLocked(TaskId id) {
  auto word = eviction_.evicted_ids.find(id / 64);
  const uint64_t bit = uint64_t{1} << (id % 64);
  if (word == eviction_.evicted_ids.end() || (word->second & bit) == 0) return false;
  word->second &= ~bit;
  if (word->second == 0) eviction_.evicted_ids.erase(word);  // the set shrinks as tasks come back
  eviction_.evicted_away.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

bool EngineImpl::NoteLoadedBack(TaskId id) {
  MutexLock lock(&eviction_.evicted_ids_mu);
  if (!ForgetEvictedLocked(id)) return false;
  counts.reloaded_tasks.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void EngineImpl::ForgetEvicted(const std::vector<uint64_t>& ids) {
  MutexLock lock(&eviction_.evicted_ids_mu);
  for (uint64_t id : ids) ForgetEvictedLocked(id);
}

bool EngineImpl::ReloadValues(TaskState& task) {
  {
    MutexLock lock(&task.mu);
    if (!task.HasEvictedValues()) return true;
  }
  absl::StatusOr<std::optional<StoredTask>> read = absl::NotFoundError("");
  {
    ReaderMutexLock gate(&store_gate_);  // not while a GC pass deletes records
    read = store_->ReadTask(task.id);
  }
  DecodedResult stored;
  bool loaded = read.ok() && read->has_value() &&
                DecodeResultRecord((*read)->result, &stored, /*refs=*/nullptr);
  if (loaded) {
    MutexLock lock(&task.mu);
    loaded = InstallValues(task, stored);
  }
  (loaded ? counts.reloaded_values : counts.reload_failures)
      .fetch_add(1, std::memory_order_relaxed);
  return loaded;
}

void EngineImpl::EvictorLoop() {
  const auto usage = memory_.usage ? memory_.usage : ResidentBytes;
  const size_t low_water = LowWaterBytes();
  // Past half the limit, or with many results waiting for a snapshot, the evictor looks ten
  // times as often: a burst of calls creates a hundred thousand tasks a second.
  const auto pressed_interval =
      std::min(memory_.interval, std::max(std::chrono::milliseconds(10), memory_.interval / 10));
  // Admission needs the snapshot thread: without it nothing but Flush() drains the backlog.
  const bool admitting = snapshot_thread_.joinable();
  // New results waiting for a snapshot: more than about an eighth of the limit at 1 KiB
  // each (at least 1024) want a snapshot now, and close admission past the low water.
  const size_t max_backlog = std::max(memory_.limit_bytes / 8192, size_t{1024});
  bool pressed = false;
  uint64_t ticks = 0;
  // Over the limit with nothing left that may leave memory: said once, after a while of it,
  // and again only after the process was under the limit since, or once a garbage
  // collection pass runs (which the message then names).
  using Clock = std::chrono::steady_clock;
  constexpr auto kStuckFor = std::chrono::seconds(2);
  std::optional<Clock::time_point> stuck_since;
  std::optional<Clock::time_point> last_trim;  // of the last trim
  // Of the last request for the memtables to go to table files (want_settle).
  constexpr auto kSettleEvery = std::chrono::seconds(1);
  std::optional<Clock::time_point> last_settle;
  std::chrono::seconds trim_every = kStuckFor;  // with nothing evicted
  bool said_stuck = false;
  // Said while a garbage collection pass ran: a pass that starts after it was said is
  // named in the next (its graph of the store is not the cache's to give back).
  bool said_collecting = false;
  while (evictor_signal_.Sleep(pressed ? pressed_interval : memory_.interval)) {
    // Freed blocks go back to the system, or the resident set would not come down.
    if (ReclaimEvicted() > 0) malloc_trim(0);
    const size_t in_use = usage();
    counts.resident_bytes.store(in_use, std::memory_order_relaxed);
    // mallinfo2 walks every arena's free lists, each under its lock (2 ms and more on a
    // daemon that restored a large graph, mallocs of calls waiting meanwhile): one tick in
    // ten, for the stat only (the limit is checked against the resident set).
    if (memory_.usage || ticks++ % 10 == 0) {
      counts.heap_bytes.store(memory_.usage ? in_use : HeapInUse(), std::memory_order_relaxed);
    }
    size_t backlog = snapshot_backlog_.load(std::memory_order_relaxed);
    {
      MutexLock queue(&persist_mu_);
      backlog += persist_queue_.size();
    }
    // Past the low water with a backlog, calls from outside wait for snapshots to catch
    // up. Decided before evicting, which waits for a snapshot's chunk being written. Not
    // while snapshots fail (a full disk): nothing could leave, calls would only wait. Over
    // the limit itself, any result waiting for a snapshot holds them (unless nothing has
    // left memory for a while): a few large results are far below the backlog's count,
    // and 40 calls of 5 MB results took a 64 MiB daemon to 373-421 MiB (183-187 since,
    // the burst 4.2 s -> 7 s; 300,000 small calls under 96 MiB: the same peak, 7-15%
    // slower, measured once each).
    const bool over = in_use > memory_.limit_bytes + reclaimer_.PendingBytes();
    SetAdmission(/*closed=*/admitting && in_use > low_water &&
                 (backlog > max_backlog || (over && backlog > 0 && !stuck_since)) &&
                 !snapshots_failing_.load(std::memory_order_relaxed));
    // Only what a snapshot wrote can leave memory: a burst's new results are written as
    // soon as there are many, not at the next interval.
    const auto want_snapshot = [this] {
      snapshot_wanted_.store(true, std::memory_order_relaxed);
      snapshot_signal_.Wake();
    };
    const auto want_settle = [this] {
      settle_wanted_.store(true, std::memory_order_relaxed);
      snapshot_signal_.Wake();
    };
    if (backlog > max_backlog) want_snapshot();
    // Records evicted whole but not freed yet (a section that saw them is still open) are
    // counted as gone already, or every tick would evict them again.
    const size_t pending = reclaimer_.PendingBytes();
    if (in_use > memory_.limit_bytes + pending) {
      const size_t wanted = in_use - pending - low_water;
      // Not while a snapshot's chunk is written (EvictValues), and a snapshot takes flush_mu_
      // again at once for its next chunk: rather than wait, the evictor leaves the request
      // to the snapshot, which evicts between its chunks (WriteSnapshotChunk).
      if (flush_mu_.TryLock()) {
        bool cut_short = false;  // more to look at: the next tick goes on
        const size_t freed = EvictLocked(wanted, &cut_short);
        flush_mu_.Unlock();
        // Blocks freed by something else (a burst of calls that ended) stay with the
        // allocator too: over the limit with the heap well under the resident set, they go
        // back, every kStuckFor at most (the trim walks every arena).
        const auto now = Clock::now();
        if (freed > 0) {
          malloc_trim(0);
          last_trim = now;
        } else if (counts.heap_bytes.load(std::memory_order_relaxed) + in_use / 4 < in_use &&
                   (!last_trim || now - *last_trim >= trim_every)) {
          malloc_trim(0);
          last_trim = now;
          // Little came back (what is over is not the allocator's to give): less often, up
          // to once a minute; a trim walks every arena under its lock.
          trim_every = usage() + in_use / 16 > in_use
                           ? std::min<std::chrono::seconds>(trim_every * 2, std::chrono::seconds(60))
                           : std::chrono::seconds(kStuckFor);
        }
        // Too little could leave, all round: the next snapshot comes now, or with nothing
        // for it to write, the memtables go to table files. (Wanting a snapshot every tick
        // regardless kept the snapshot thread from ever seeing the daemon quiet, so it
        // never settled: six calls with 5 MB arguments left 36 MB of memtables and 50 MB
        // of log under a 64 MiB limit for good.)
        if (freed < wanted && !cut_short) {
          if (backlog > 0) {
            want_snapshot();
          } else if (stuck_since && (!last_settle || now - *last_settle >= kSettleEvery)) {
            // Only once stuck (a tick before freed nothing either, with nothing waiting), and
            // at most every kSettleEvery: under steady writes, flushes of 4 MiB instead of
            // the memtables' budget would multiply table files and compactions.
            want_settle();
            last_settle = now;
          }
        }
        const bool collecting = counts.gc_phase.load(std::memory_order_relaxed) != GcPhase::kIdle;
        if (freed > 0 || backlog > 0 || pending > 0 || cut_short) {
          stuck_since.reset();
        } else if (!stuck_since) {
          stuck_since = Clock::now();
        } else if ((!said_stuck || (collecting && !said_collecting)) &&
                   Clock::now() - *stuck_since >= kStuckFor) {
          said_stuck = true;
          said_collecting = collecting;
          size_t observations = 0;
          {
            MutexLock lock(&observed_.mu);
            observations = observed_.records.size();
          }
          Log(LogLevel::kWarning,
              "memory: the resident set (" + MibText(in_use) + ") stays over the limit (" +
                  MibText(memory_.limit_bytes) +
                  ") with nothing left that may leave memory: what remains is running, "
                  "read by tasks in memory, or the process itself (about 33 MiB for an "
                  "idle turbined)" +
                  (observations > 0
                       ? ", and what it keeps of the " + std::to_string(observations) +
                             " files and directories its results observed (watched, and "
                             "checked at start, in memory or not: some hundreds of bytes each)"
                       : "") +
                  (collecting ? ", and the garbage collection pass running now holds its "
                                "graph of the store (tens of bytes per stored task) until it "
                                "ends"
                              : "") +
                  "; raise --memory-limit");
        }
      } else {
        eviction_wanted_.store(wanted, std::memory_order_relaxed);
        // A snapshot is writing: results are on their way to the store, which is not
        // "nothing left that may leave". A mark left from an idle moment before kept
        // admission open for the whole of a slow snapshot, the case admission is for
        // (Admission.OverTheLimitAFewResultsWaitingForASnapshotHoldOutsideCalls failed so
        // under load).
        if (backlog > 0) stuck_since.reset();
      }
    }
    if (in_use <= memory_.limit_bytes) {
      stuck_since.reset();
      said_stuck = false;
      said_collecting = false;
    }
    // Half the limit, or new results arriving: look again soon. Not while stuck with
    // nothing waiting for a snapshot: over the limit with nothing that may leave, each
    // look walked the task table in vain, 50 times a second for as long as the daemon
    // idled (0.8% of a core for an idle Debug daemon).
    const bool stuck = stuck_since.has_value() && backlog == 0;
    pressed = (in_use > memory_.limit_bytes / 2 || backlog > 1024) && !stuck;
    // Resting, it is woken by the first new result queued for a snapshot (QueuePersist):
    // a burst over the limit is met at once, as when pressed.
    evictor_resting_.store(stuck, std::memory_order_relaxed);
  }
  SetAdmission(/*closed=*/false);
}

void EngineImpl::SetAdmission(bool closed) {
  if (admission_closed_.load(std::memory_order_relaxed) == closed) return;
  {
    std::lock_guard lock(admission_mu_);
    admission_closed_.store(closed, std::memory_order_relaxed);
  }
  if (!closed) admission_open_.notify_all();
}

void EngineImpl::AwaitAdmission() {
  // Bounded: admission that stays closed this long (a store that writes slowly) lets a call
  // through rather than hold it longer.
  constexpr auto kMaxWait = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(admission_mu_);
    const auto open = [this] { return !admission_closed_.load(std::memory_order_relaxed); };
    if (open()) return;  // opened since the caller looked
    admission_open_.wait_for(lock, kMaxWait, open);
  }
  counts.admission_waits.fetch_add(1, std::memory_order_relaxed);
  counts.admission_wait_nanos.fetch_add(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count()),
      std::memory_order_relaxed);
}

}  // namespace turbine::internal
