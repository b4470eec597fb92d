// observe.cc — observations of the outside world, checked again at open (observe.h).
#include "turbine/observe.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "engine_impl.h"
#include "reclaim.h"
#include "turbine/error.h"

namespace turbine {
namespace {

struct KindFunctions {
  ObservationSubscriber subscribe;
  ObservationLooker look;
};

std::map<std::string, KindFunctions, std::less<>>& Kinds() {
  static auto* const kinds = new std::map<std::string, KindFunctions, std::less<>>;
  return *kinds;
}

const KindFunctions* FindKind(std::string_view name) {
  auto found = Kinds().find(name);
  return found == Kinds().end() ? nullptr : &found->second;
}

void PutBigEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(value >> (8 * i)));
}
uint64_t GetBigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (char byte : bytes) value = value << 8 | static_cast<unsigned char>(byte);
  return value;
}

// The kind of the marker a snapshot stores for an observation whose change it logged
// before the task's new record (LogObservedChanges): registered by no build, so the check
// at open counts it as changed.
constexpr std::string_view kChangedMarkerKind = "\x01changed";

// An observation is stored as its fingerprint (u64 BE), the length of its key (u32 BE),
// its key and its change key.
std::string EncodeObservation(const internal::ObservationRecord& observation) {
  std::string bytes;
  bytes.reserve(12 + observation.key.size() + observation.change_key.size());
  PutBigEndian(observation.fingerprint, 8, &bytes);
  PutBigEndian(observation.key.size(), 4, &bytes);
  bytes += observation.key;
  bytes += observation.change_key;
  return bytes;
}

bool DecodeObservation(std::string_view bytes, internal::ObservationRecord* observation) {
  if (bytes.size() < 12) return false;
  observation->fingerprint = GetBigEndian(bytes.substr(0, 8));
  const uint64_t key_size = GetBigEndian(bytes.substr(8, 4));
  if (key_size > bytes.size() - 12) return false;
  observation->key.assign(bytes.substr(12, key_size));
  observation->change_key.assign(bytes.substr(12 + key_size));
  return observation->key.find('\0') != std::string::npos && !observation->change_key.empty();
}

}  // namespace

ObservationKind::ObservationKind(std::string_view name, ObservationSubscriber subscribe,
                                 ObservationLooker look) {
  if (!Kinds().emplace(std::string(name), KindFunctions{subscribe, look}).second) {
    std::fprintf(stderr, "turbine: observation kind '%.*s' registered twice\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
}

void Observe(std::string_view kind, std::string_view subject, uint64_t fingerprint,
             std::string_view group) {
  internal::ExecContext* exec = internal::tls_context.exec;
  if (exec == nullptr) {
    std::fprintf(stderr, "turbine: Observe() called outside a task body\n");
    std::abort();
  }
  if (!exec->task->fn->session_dependent) {
    // Its result would be trusted after a restart without the observation being checked.
    Fail("Observe() needs a session-dependent function; " + exec->task->fn->name + " is not");
  }
  internal::ObservationRecord observation;
  observation.key.reserve(kind.size() + 1 + subject.size());
  observation.key.append(kind).push_back('\0');
  observation.key.append(subject);
  observation.change_key.push_back('\0');
  observation.change_key.append(group.empty() ? subject : group);
  observation.fingerprint = fingerprint;
  if (exec->observation.has_value() && *exec->observation != observation) {
    exec->observed_twice = true;
  }
  exec->observation = std::move(observation);
}

}  // namespace turbine

namespace turbine::internal {

bool EngineImpl::CommitObservation(TaskState& task, const ExecContext& context) {
  if (!task.fn->session_dependent) return false;
  const ObservationRecord* now = context.Checkable();
  std::string changed;  // the key of an observation that no longer holds
  bool rewrite = false;
  {
    MutexLock lock(&observed_.mu);
    observed_.doubted.erase(task.id);  // it looked again: what it saw is what it holds
    auto before = observed_.records.find(task.id);
    if (before != observed_.records.end()) {
      if (now == nullptr || before->second != *now) {
        changed = before->second.change_key;
        rewrite = true;
      }
      if (now != nullptr) {
        before->second = *now;
      } else {
        observed_.records.erase(before);
      }
    } else if (now != nullptr) {
      observed_.records.emplace(task.id, *now);
      rewrite = true;
    }
  }
  if (!changed.empty()) {
    // As an input change: the stamp and the trusted tasks under input_writer_mu_, which a
    // snapshot takes to read the stamp its records stand for.
    MutexLock writer(&input_writer_mu_);
    const uint64_t stamp = NextStamp();
    const uint64_t bits = InputBits(changed);
    {
      MutexLock lock(&observed_.mu);
      observed_.changes.push_back(ObservedChange{
          InputChange{.stamp = stamp, .key = std::move(changed), .key_hash = {}}, task.id});
    }
    DistrustRestored(stamp, {bits});
  }
  return rewrite;
}

uint64_t EngineImpl::ObservedBits(const TaskState& task) {
  MutexLock lock(&observed_.mu);
  auto found = observed_.records.find(task.id);
  return found == observed_.records.end() ? 0 : InputBits(found->second.change_key);
}

bool EngineImpl::ObservationHolds(TaskId id) {
  MutexLock lock(&observed_.mu);
  return observed_.records.contains(id) && !observed_.doubted.contains(id);
}

std::optional<std::string> EngineImpl::StoredObservationOf(const TaskState& task) {
  if (!task.fn->session_dependent) return std::nullopt;
  if (!task.observed) return std::string();
  MutexLock lock(&observed_.mu);
  auto found = observed_.records.find(task.id);
  return found == observed_.records.end() ? std::string() : EncodeObservation(found->second);
}

absl::Status EngineImpl::LogObservedChanges(std::vector<StoredTask>& records) {
  std::vector<ObservedChange> committed;
  std::vector<InputChange> changes;
  std::vector<StoredObservation> observations;  // markers, then forgotten ones (empty)
  std::vector<std::pair<TaskId, uint64_t>> forgotten;  // with the stamp of its doubt
  {
    MutexLock lock(&observed_.mu);
    committed = std::exchange(observed_.changes, {});
    absl::flat_hash_map<TaskId, StoredTask*> in_chunk;
    if (!committed.empty()) {
      for (StoredTask& record : records) in_chunk.emplace(record.id, &record);
    }
    for (const ObservedChange& observed : committed) {
      changes.push_back(observed.change);
      auto now = observed_.records.find(observed.task);
      // Of a kind no build registers: the check at open counts it as changed, in the
      // group of the observation the task holds now (its readers' bits).
      const std::string marker = EncodeObservation(ObservationRecord{
          std::string(kChangedMarkerKind) + '\0',
          now == observed_.records.end() ? observed.change.key : now->second.change_key, 0});
      auto record = in_chunk.find(observed.task);
      if (record == in_chunk.end()) {
        observations.push_back(StoredObservation{observed.task, marker});
      } else if (record->second->observation !=
                 (now == observed_.records.end() ? "" : EncodeObservation(now->second))) {
        // Encoded before this change: written after the log, it would put the older
        // observation back. Its next record, queued by the change, replaces the marker.
        record->second->observation = marker;
      }
    }
    // Only once nothing runs: a task that looked again after its observation was forgotten
    // commits it as new, logging no change, and a reader of it could reach the disk
    // before its record does (a snapshot writes in chunks; a crash between them would
    // leave the reader trusted with nothing to check it by).
    if (final_snapshot_.load(std::memory_order_relaxed)) {
      for (const auto& [id, stamp] : observed_.doubted) {
        // Its invalidation is still marking (none runs by now; but were one to): the
        // next open checks it.
        if ((stamp & ObservationState::kPendingDoubt) != 0) continue;
        changes.push_back(InputChange{
            .stamp = stamp, .key = observed_.records.at(id).change_key, .key_hash = {}});
        observations.push_back(StoredObservation{id, std::string()});
        forgotten.emplace_back(id, stamp);
      }
    }
  }
  if (changes.empty()) return absl::OkStatus();
  absl::Status logged = store_->LogInputChanges(changes, observations, stamp_.load() + 1);
  // A store without a log vouches for none (ReadInputChanges): nothing to keep it in.
  if (!logged.ok() && logged.code() != absl::StatusCode::kUnimplemented) {
    MutexLock lock(&observed_.mu);  // the doubted are still doubted
    committed.insert(committed.end(), observed_.changes.begin(), observed_.changes.end());
    observed_.changes = std::move(committed);
    return logged;
  }
  // As the store now: no observation (the final snapshot's chunks may come after this).
  MutexLock lock(&observed_.mu);
  for (const auto& [id, stamp] : forgotten) {
    auto doubted = observed_.doubted.find(id);
    if (doubted == observed_.doubted.end() || doubted->second != stamp) continue;
    observed_.doubted.erase(doubted);
    observed_.records.erase(id);
  }
  return absl::OkStatus();
}

absl::Status EngineImpl::ForgetObservations(const std::vector<uint64_t>& ids) {
  // In this session too: a trusted result that follows from one would otherwise be stored
  // again later, clean as of after the logged change, with nothing to check at the next
  // open. Those become dirty and verify, and find the observing task gone (it executes,
  // observing again). One in memory is invalidated by DeleteGarbage, for the same reason.
  std::vector<InputChange> changes;
  std::vector<uint64_t> bits;  // each change's
  {
    MutexLock lock(&observed_.mu);
    for (uint64_t id : ids) {
      auto found = observed_.records.find(id);
      if (found == observed_.records.end()) continue;
      bits.push_back(InputBits(found->second.change_key));
      changes.push_back(InputChange{.stamp = 0, .key = found->second.change_key, .key_hash = {}});
    }
  }
  if (changes.empty()) return absl::OkStatus();
  MutexLock writer(&input_writer_mu_);
  const uint64_t stamp = NextStamp();
  for (InputChange& change : changes) change.stamp = stamp;
  absl::Status logged = store_->LogInputChanges(changes, {}, stamp_.load() + 1);
  if (!logged.ok() && logged.code() != absl::StatusCode::kUnimplemented) return logged;
  DistrustRestored(stamp, bits);
  return absl::OkStatus();
}

EngineImpl::RecheckPlan EngineImpl::PlanRechecks(std::vector<TaskId> ids) {
  std::sort(ids.begin(), ids.end());  // a task polled twice since the last poll
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  RecheckPlan plan;
  MutexLock lock(&observed_.mu);
  for (TaskId id : ids) {
    auto found = observed_.records.find(id);
    if (found == observed_.records.end()) {
      if (observed_.checking) {
        // Its stored observation is being checked and is not in observed_.records yet.
        observed_.rechecks_while_checking.push_back(id);
      } else {
        plan.changed.push_back(id);  // nothing to check against: executed again
      }
      continue;
    }
    const std::string_view key = found->second.key;
    const size_t split = key.find('\0');
    const KindFunctions* kind = FindKind(key.substr(0, split));
    if (kind == nullptr) {
      plan.changed.push_back(id);
      continue;
    }
    // Doubted: invalidated already (or found changed at open), it looks again when it
    // executes; it may be executing now, and its new subscription was the one polled.
    plan.rechecks.push_back(Recheck{id, kind->subscribe, kind->look,
                                    std::string(key.substr(split + 1)), found->second.fingerprint,
                                    observed_.doubted.contains(id)});
  }
  return plan;
}

void EngineImpl::RunRechecks(const std::shared_ptr<InvalidationTarget>& target,
                             RecheckPlan* plan) {
  Invalidator invalidator(target, kNoTask);
  for (const Recheck& recheck : plan->rechecks) {
    // As at open, and as the body did: subscribed again (the poll took the subscription),
    // then looked at, so a change after the look fires the new subscription.
    invalidator.task_ = recheck.id;
    recheck.subscribe(recheck.subject, invalidator);
    if (recheck.subscribe_only) continue;
    const std::optional<uint64_t> now = recheck.look(recheck.subject, invalidator);
    if (!now.has_value() || *now != recheck.fingerprint) plan->changed.push_back(recheck.id);
  }
}

void EngineImpl::RecheckMany(std::vector<TaskId> ids) {
  RecheckPlan plan = PlanRechecks(std::move(ids));
  RunRechecks(invalidation_target_, &plan);
  if (!plan.changed.empty()) InvalidateMany(std::move(plan.changed));
}

void EngineImpl::CheckObservations() {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  if (store_ == nullptr) return;
  // Timed from the read: what the check at start costs a restart (bench/run-tree).
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<StoredObservation>> stored = store_->ReadObservations();
  if (!stored.ok()) {
    // No observing task is trusted (TrustRestored finds none), and neither is anything
    // that follows from one: any of them may have changed.
    if (stored.status().code() != absl::StatusCode::kUnimplemented) {
      Log(LogLevel::kWarning, "the stored observations cannot be read: " +
                                  std::string(stored.status().message()));
      MutexLock writer(&input_writer_mu_);
      DistrustRestored(NextStamp(), {kAnyInput});
    }
    return;
  }
  if (stored->empty()) {
    LogChecked(0, 0, start);  // the start-up log says so either way
    return;
  }
  struct Checked {
    TaskId id;
    ObservationRecord observation;
    const KindFunctions* kind = nullptr;  // null: damaged, or a kind this build lacks
    std::string_view subject;  // in observation.key
    bool holds = false;
  };
  std::vector<Checked> checked(stored->size());
  // Decoded by the subscribing thread as it goes: the lookers see an entry only once it is
  // subscribed, and decoding then overlaps their looks instead of coming before them.
  auto decode = [&](size_t i) {
    Checked& entry = checked[i];
    entry.id = (*stored)[i].id;
    if (!DecodeObservation((*stored)[i].bytes, &entry.observation)) {
      entry.observation = {};
      return;
    }
    const std::string_view key = entry.observation.key;
    const size_t split = key.find('\0');
    entry.kind = FindKind(key.substr(0, split));
    entry.subject = key.substr(split + 1);
  };
  {
    MutexLock lock(&observed_.mu);
    observed_.checking = true;
  }
  // The kinds take a subject as a std::string: each thread copies it into one of its own,
  // where a string per entry would be an allocation each (few paths fit in place).
  // One thread subscribes, in order; the others look behind it, a chunk at a time, at what
  // it has subscribed: every subscription comes before its look, as in the body.
  constexpr size_t kChunk = 64;
  std::atomic<size_t> subscribed{0};
  std::atomic<size_t> next{0};
  // One invalidator per thread, renamed for each entry: a temporary per entry would touch
  // the target's reference count, a line all these threads share, twice each.
  auto subscribe = [&] {
    Invalidator invalidator(invalidation_target_, kNoTask);
    std::string subject;
    for (size_t i = 0; i < checked.size(); ++i) {
      decode(i);
      const Checked& entry = checked[i];
      if (entry.kind != nullptr) {
        invalidator.task_ = entry.id;
        subject.assign(entry.subject);
        entry.kind->subscribe(subject, invalidator);
      }
      if ((i + 1) % kChunk == 0) subscribed.store(i + 1, std::memory_order_release);
    }
    subscribed.store(checked.size(), std::memory_order_release);
  };
  auto look = [&] {
    Invalidator invalidator(invalidation_target_, kNoTask);
    std::string subject;
    for (size_t begin = next.fetch_add(kChunk); begin < checked.size();
         begin = next.fetch_add(kChunk)) {
      const size_t end = std::min(begin + kChunk, checked.size());
      while (subscribed.load(std::memory_order_acquire) < end) std::this_thread::yield();
      for (size_t i = begin; i < end; ++i) {
        Checked& entry = checked[i];
        if (entry.kind == nullptr) continue;
        invalidator.task_ = entry.id;
        subject.assign(entry.subject);
        const std::optional<uint64_t> now = entry.kind->look(subject, invalidator);
        entry.holds = now.has_value() && *now == entry.observation.fingerprint;
      }
    }
  };
  // Looking is system calls (a stat, a directory read): more threads than cores still help.
  const size_t lookers = std::max<size_t>(
      1, std::min<size_t>(checked.size() / 256, std::max(3u, std::thread::hardware_concurrency())));
  std::vector<std::thread> helpers;
  helpers.emplace_back(subscribe);
  for (size_t t = 1; t < lookers; ++t) helpers.emplace_back(look);
  look();
  for (std::thread& helper : helpers) helper.join();
  stored->clear();

  std::vector<uint64_t> changed_bits;  // each change's
  size_t changed = 0;
  std::vector<TaskId> deferred_rechecks;
  {
    // The changes are at one stamp, above every stored record's, which the final snapshot
    // logs them at (LogObservedChanges).
    MutexLock writer(&input_writer_mu_);
    const uint64_t stamp = NextStamp();
    {
      MutexLock lock(&observed_.mu);
      observed_.records.reserve(checked.size());
      observed_.checking = false;
      for (Checked& entry : checked) {
        if (entry.observation.key.empty()) {  // damaged: whatever it was, it may have changed
          changed_bits.push_back(kAnyInput);
          ++changed;
          continue;
        }
        if (!entry.holds || observed_.fired_while_checking.contains(entry.id)) {
          changed_bits.push_back(InputBits(entry.observation.change_key));
          ++changed;
          observed_.doubted.try_emplace(entry.id, stamp);
        }
        // Kept either way: a changed one until the final snapshot logs its change and
        // forgets it (LogObservedChanges).
        observed_.records.emplace(entry.id, std::move(entry.observation));
      }
      observed_.fired_while_checking.clear();
      deferred_rechecks.swap(observed_.rechecks_while_checking);
    }
    if (!changed_bits.empty()) DistrustRestored(stamp, changed_bits);
  }
  if (!deferred_rechecks.empty()) RecheckMany(std::move(deferred_rechecks));
  counts.observations_checked.store(checked.size(), std::memory_order_relaxed);
  counts.observations_changed.store(changed, std::memory_order_relaxed);
  LogChecked(checked.size(), changed, start);
}

void EngineImpl::LogChecked(size_t checked, size_t changed,
                            std::chrono::steady_clock::time_point start) {
  const double millis = std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  char took[32];
  std::snprintf(took, sizeof took, "%.1f ms", millis);
  Log(LogLevel::kInfo, "checked " + std::to_string(checked) +
                           (checked == 1 ? " observation (" : " observations (") +
                           std::to_string(changed) + " changed) in " + took);
}

}  // namespace turbine::internal
