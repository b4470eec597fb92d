// invalidation.cc — inputs and the dirty marking that follows their changes.
#include <absl/cleanup/cleanup.h>
#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <utility>
#include <vector>

#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"
#include "turbine/error.h"
#include "turbine/function.h"
#include "turbine/text.h"

namespace turbine::internal {

// The input slot function: tasks keyed by the input's name, never executed.
const FunctionInfo& InputFunction() {
  static FunctionInfo* const info = [] {
    auto* fn = new FunctionInfo;  // lives for the process, like every registered function
    fn->name = "turbine.input";
    fn->version = 1;
    fn->description = "the value of an input set from outside";
    fn->kind = FunctionKind::kInput;
    fn->result_type = "any";
    FillArgs<std::tuple<std::string>>(*fn);
    RegisterFunction(fn);
    return fn;
  }();
  return *info;
}

RawVc InputVc(const std::string& key) { return CurrentEngineOrDie().InputVc(key); }

RawVc EngineImpl::InputVc(const std::string& key) {
  std::tuple<std::string> args(key);
  return Call(InputFunction(), RawVc{}, &args);
}

absl::Status EngineImpl::SetInputs(std::vector<InputValue> values, size_t* changed) {
  return ApplyInputs(std::move(values), /*deleting=*/false, changed);
}

absl::Status EngineImpl::DeleteInputs(std::vector<std::string> keys, size_t* changed) {
  std::vector<InputValue> values;
  values.reserve(keys.size());
  for (std::string& key : keys) values.push_back(InputValue{std::move(key), nullptr, nullptr});
  return ApplyInputs(std::move(values), /*deleting=*/true, changed);
}

Output NotSetOutput(const std::string& key) {
  // Echo: the key is the caller's, maybe megabytes, and this error is cached.
  return Output::Error(absl::StatusCode::kUnknown, "input '" + Echo(key) + "' is not set");
}

namespace {

// KeepLastOfEachKey drops every value of a key but its last: a key given twice in one batch
// ends as applying the batch in order would leave it, and counts (and invalidates its
// readers) once, or not at all if its last value is the one it has.
void KeepLastOfEachKey(std::vector<InputValue>& values) {
  if (values.size() < 2) return;
  std::vector<bool> keep(values.size());
  {
    absl::flat_hash_set<std::string_view> later;
    for (size_t i = values.size(); i-- > 0;) keep[i] = later.insert(values[i].key).second;
  }
  size_t kept = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!keep[i]) continue;
    if (kept != i) values[kept] = std::move(values[i]);
    ++kept;
  }
  values.resize(kept);
}

}  // namespace

absl::Status EngineImpl::ApplyInputs(std::vector<InputValue> values, bool deleting,
                                     size_t* changed) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  if (changed != nullptr) *changed = 0;
  KeepLastOfEachKey(values);
  // Encoded first, with no lock held: the bytes the store gets, and on the way the tasks
  // the values refer to (Vcs inside them).
  std::vector<std::string> bytes(deleting || store_ == nullptr ? 0 : values.size());
  std::vector<TaskId> referred;
  if (!bytes.empty()) {
    VcSink sink(&referred);
    for (size_t i = 0; i < values.size(); ++i) {
      values[i].type->serialize(values[i].value.get(), &bytes[i]);
    }
  }
  absl::StatusOr<size_t> applied;
  if (referred.empty()) {
    applied = ApplyInputBatch(values, bytes, deleting);
  } else {
    // What a value refers to is stored before the value is (a crash between the two leaves
    // records nobody refers to, which GC removes in time): once the input is acknowledged, its
    // references name their tasks after any crash. Under flush_mu_ until the input is
    // written: no snapshot is between setting `persisted` and its write, and no GC pass
    // deletes what the input refers to before its scan can see the input.
    MutexLock flushing(&flush_mu_);
    // The inputs' own tasks too, when no snapshot wrote them yet: a GC pass finds set
    // inputs, and so what they hold, by their records.
    for (const InputValue& input : values) {
      if (const TaskId id = InputVc(input.key).task; id != kNoTask) referred.push_back(id);
    }
    absl::Status stored = StoreReferredTasks(std::move(referred));
    if (!stored.ok()) {
      return absl::Status(stored.code(), "the inputs were not set: the tasks they refer to "
                                         "could not be stored: " +
                                             std::string(stored.message()));
    }
    applied = ApplyInputBatch(values, bytes, deleting);
  }
  if (!applied.ok()) return applied.status();
  if (changed != nullptr) *changed = *applied;
  if (*applied > 0) NotifyChange();
  return absl::OkStatus();
}

absl::Status EngineImpl::StoreReferredTasks(std::vector<TaskId> work) {
  std::vector<StoredTask> records;
  absl::flat_hash_set<TaskId> seen;
  std::string scratch;
  while (!work.empty()) {
    const TaskId id = work.back();
    work.pop_back();
    if (!seen.insert(id).second) continue;
    // A pass that scanned before the input was written keeps it and what it refers to.
    if (collecting_) kept_while_collecting_.push_back(id);
    TaskState* task = tasks_.Get(id);
    if (task == nullptr) continue;  // not in memory: known only from the store
    MutexLock lock(&task->mu);
    // Written (snapshots set it under flush_mu_, with their write), and with it everything
    // its record refers to.
    if (task->persisted) continue;
    // Its identity alone, as a snapshot writes a task that has not run: the next snapshot
    // that takes it writes all of it. The receiver and Vc arguments go too.
    FillIdentityRecord(*task, records.emplace_back(), scratch, &work);
  }
  if (records.empty()) return absl::OkStatus();
  // Not synced: the input's own write, synced, follows it in the same log.
  return store_->WriteSnapshot(records, next_task_id_.load(), stamp_.load() + 1);
}

absl::StatusOr<size_t> EngineImpl::ApplyInputBatch(std::vector<InputValue>& values,
                                                   std::vector<std::string>& bytes,
                                                   bool deleting) {
  std::vector<TaskId> readers;
  // One batch at a time: the order batches become durable is the order they apply.
  MutexLock writer(&input_writer_mu_);
  struct Change {
    TaskState* task;
    Output next;
    uint64_t stamp;
    size_t value;  // its position in `values`
  };
  std::vector<Change> changes;
  // Every input found stays in memory until its change is applied (`set_pending`).
  absl::Cleanup unpin = [&changes] {
    for (const Change& change : changes) {
      MutexLock lock(&change.task->mu);
      change.task->set_pending = false;
    }
  };
  for (size_t i = 0; i < values.size(); ++i) {
    InputValue& input = values[i];
    Output next;
    if (deleting) {
      // A deleted input reads as one never set; deleting one that is not set changes
      // nothing.
      next = NotSetOutput(input.key);
    } else {
      next.SetValue(input.type, std::move(input.value));
    }
    TaskState* task = nullptr;
    bool same = false;
    while (task == nullptr) {
      task = Task(InputVc(input.key).task);
      if (task == nullptr) {
        return absl::UnavailableError("input '" + Echo(input.key) +
                                      "' could not be read from the store");
      }
      MutexLock lock(&task->mu);
      if (task->gone) {  // evicted as it was found: look it up again
        task = nullptr;
        continue;
      }
      same = task->output.SameAs(next);  // equal value: nobody is invalidated
      task->set_pending = !same;
    }
    if (same) continue;
    changes.push_back(Change{task, std::move(next), NextStamp(), i});
  }
  if (changes.empty()) return 0;
  if (store_ != nullptr) {
    // Not durable means not applied: a value served (or pushed to a watcher) now and
    // gone after a restart would be worse than the error. The stamps taken for it are
    // simply never used; stamps need only grow.
    absl::Status durable;
    if (deleting) {
      std::vector<std::string> keys;
      keys.reserve(changes.size());
      for (const Change& change : changes) keys.push_back(InputKeyOf(*change.task));
      durable = store_->DeleteInputs(keys, stamp_.load() + 1);
    } else {
      std::vector<std::pair<std::string, StoredInput>> records;
      records.reserve(changes.size());
      for (const Change& change : changes) {
        records.emplace_back(InputKeyOf(*change.task),
                             StoredInput{change.next.type()->name, std::move(bytes[change.value]),
                                         change.stamp});
      }
      durable = store_->WriteInputs(records, stamp_.load() + 1);
    }
    if (!durable.ok()) {
      return absl::Status(durable.code(), std::string(deleting ? "the inputs were not deleted: "
                                                               : "the inputs were not set: ") +
                                              std::string(durable.message()));
    }
  }
  revision_.fetch_add(1);
  MutexLock batch(&input_batch_mu);
  std::vector<InputChangeEntry> recorded;
  recorded.reserve(changes.size());
  std::vector<StampedBits> stamped;  // for DistrustRestored: an input's summary is its key's
  stamped.reserve(changes.size());
  for (Change& change : changes) {
    MutexLock lock(&change.task->mu);
    stamped.push_back(StampedBits{change.stamp, change.task->inputs});
    InputChangeEntry& entry = recorded.emplace_back();
    entry.task = change.task->id;
    entry.before = DigestOf(change.task->output);
    entry.after = DigestOf(change.next);
    change.task->output = std::move(change.next);
    change.task->output_changed_at = change.stamp;
    change.task->dependents.ForEach([&](const Dependent& d) { readers.push_back(d.reader); });
  }
  history.RecordInputChanges(recorded);
  // Under input_writer_mu_: a snapshot reads the stamp it stands for under it too, so
  // every change below that stamp has reached its readers (Flush, Validity).
  DistrustRestored(stamped);
  MarkDirty(std::move(readers));
  return changes.size();
}

bool EngineImpl::TrustRestored(TaskState& task, const Validity& validity) {
  if (validity.needs_verification || validity.clean_as_of == 0 ||
      validity.functions != functions_digest_) {
    return false;
  }
  if (task.fn->session_dependent) {
    // Only with an observation checked at open (and so watched again); a change of it
    // since is among the changed inputs.
    MutexLock lock(&observed_.mu);
    if (!observed_.records.contains(task.id)) return false;
  }
  MutexLock lock(&trust_mu_);
  if (changed_inputs_.MayReach(validity.clean_as_of, validity.inputs)) return false;
  trusted_.push_back(Trusted{&task, validity.inputs});
  task.observed = task.fn->session_dependent;
  return true;
}

void EngineImpl::DistrustRestored(uint64_t stamp, const std::vector<uint64_t>& bits) {
  std::vector<StampedBits> changes;
  changes.reserve(bits.size());
  for (uint64_t change : bits) changes.push_back(StampedBits{stamp, change});
  DistrustRestored(changes);
}

void EngineImpl::DistrustRestored(const std::vector<StampedBits>& changes) {
  uint64_t bits = 0;
  std::vector<Trusted> trusted;
  {
    MutexLock lock(&trust_mu_);
    for (const StampedBits& change : changes) {
      changed_inputs_.Add(change.stamp, change.bits);
      bits |= change.bits;
    }
    trusted = std::exchange(trusted_, {});
  }
  // Sorted out without the lock, which restores (TrustRestored, on the call path) take:
  // what they trust meanwhile was checked against the changes just added. Calls into
  // here are serialized by input_writer_mu_.
  std::vector<TaskState*> reached;
  std::erase_if(trusted, [&](const Trusted& entry) {
    if ((entry.inputs & bits) == 0 || !ReachesAny(changes, entry.inputs)) return false;
    reached.push_back(entry.task);
    return true;
  });
  {
    MutexLock lock(&trust_mu_);
    if (trusted_.size() < trusted.size()) std::swap(trusted_, trusted);  // append the fewer
    trusted_.insert(trusted_.end(), trusted.begin(), trusted.end());
  }
  // A trusted task never registered with what it read, so no change reaches it through
  // reverse edges: one the change may reach, and its readers, become dirty here and verify
  // when next read. By pointer: one created a moment ago may not be in the task table yet.
  std::vector<TaskId> readers;
  for (TaskState* task : reached) {
    MutexLock lock(&task->mu);
    // An observing task reached looks again (one stat, say) rather than verify its no
    // dependencies: its own change may be what reached it, by an invalidation that found
    // it trusted but not yet in the task table.
    if (task->fn->session_dependent) {
      task->must_execute = true;
      task->forced_reason = ExecutionReason::kInvalidated;
    }
    MarkOneDirty(*task, &readers);
  }
  MarkDirty(std::move(readers));
}

const std::string& InputKeyOf(const std::tuple<std::string>& args) { return std::get<0>(args); }

const std::string& InputKeyOf(const TaskState& input) {
  return InputKeyOf(*static_cast<const std::tuple<std::string>*>(input.args()));
}

namespace {

void RestoreInput(const StoredInput& stored, Output* output, uint64_t* stamp) {
  const ValueType* type = FindValueType(stored.type_name);
  std::shared_ptr<const void> value = type != nullptr ? type->deserialize(stored.bytes) : nullptr;
  if (value == nullptr) {
    *output =
        Output::Error(absl::StatusCode::kUnknown, "the stored value (type '" + stored.type_name +
                                                      "') cannot be read by this build");
  } else {
    output->SetValue(type, std::move(value));
  }
  *stamp = stored.stamp;
}

}  // namespace

void InputFromStore(const std::string& key,
                    const absl::StatusOr<std::optional<StoredInput>>& stored, Output* output,
                    uint64_t* stamp) {
  if (!stored.ok()) {
    // The store's code (DATA_LOSS for a damaged record), so readers and clients see it; never
    // "not set": that would silently turn the user's data into its absence.
    const bool lost = stored.status().code() == absl::StatusCode::kDataLoss;
    *output = Output::Error(stored.status().code(),
                            std::string(lost ? "data loss: " : "") + "input '" + key +
                                "' cannot be read: " + std::string(stored.status().message()));
  } else if (stored->has_value()) {
    RestoreInput(**stored, output, stamp);
  } else {
    *output = NotSetOutput(key);
  }
}

void EngineImpl::InvalidateMany(std::vector<TaskId> ids, ExecutionReason reason, bool notify) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  // An observation that no longer holds is an input change: trusted tasks that follow
  // from it, which no reverse edge reaches, become dirty, and a restored observing task
  // not in memory will not be trusted when it is loaded (CheckObservations subscribed it).
  std::vector<uint64_t> observed;  // each one's bits
  std::vector<TaskId> doubted;
  // This call's own placeholder: another invalidation of a task that executed meanwhile
  // may doubt it anew, and must stamp that doubt itself, after its own marking.
  const uint64_t pending = ObservationState::kPendingDoubt |
                           observed_.pending_doubts.fetch_add(1, std::memory_order_relaxed);
  {
    MutexLock lock(&observed_.mu);
    for (TaskId id : ids) {
      auto found = observed_.records.find(id);
      if (found != observed_.records.end()) {
        observed.push_back(InputBits(found->second.change_key));
        doubted.push_back(id);
        // A task restored later looks again. Stamped below, unless doubted already.
        observed_.doubted.try_emplace(id, pending);
      } else if (observed_.checking) {
        observed_.fired_while_checking.insert(id);
      }
    }
  }
  if (!observed.empty()) {
    MutexLock writer(&input_writer_mu_);
    DistrustRestored(NextStamp(), observed);
  }
  // Other invalidators are handed out by tasks of this session, which are in memory.
  ExecuteAgain(ids, reason);
  if (!doubted.empty()) {
    // The stamp the final snapshot logs the change at (LogObservedChanges), taken once the
    // readers are marked dirty, under input_writer_mu_, under which a snapshot reads the
    // stamp its records are clean as of: a record clean as of it or later was validated
    // after the change. (A stamp taken before the marking could be read by a snapshot
    // that then wrote a reader not yet marked as clean, and stale.)
    MutexLock writer(&input_writer_mu_);
    const uint64_t stamp = NextStamp();
    MutexLock lock(&observed_.mu);
    for (TaskId id : doubted) {
      auto found = observed_.doubted.find(id);
      if (found != observed_.doubted.end() && found->second == pending) found->second = stamp;
    }
  }
  if (notify && !ids.empty()) NotifyChange();
}

void EngineImpl::ExecuteAgain(std::vector<TaskId>& ids, ExecutionReason reason) {
  std::erase_if(ids, [this, reason](TaskId id) {
    for (;;) {
      TaskState* task = tasks_.Get(id);
      // Never an input: it has no body (its retry reads the store, RetryInput). One may
      // come here by id, loaded back after the retry loop found it out of memory.
      if (task == nullptr || task->fn->kind == FunctionKind::kInput) return true;
      MutexLock lock(&task->mu);
      // Evicted whole since it was found: marked, the retired record would keep the mark
      // from the one loaded back. The table no longer has it once its lock is free.
      if (task->gone) continue;
      task->must_execute = true;
      task->forced_reason = reason;
      return false;
    }
  });
  if (!ids.empty()) MarkDirty(ids);
}

uint64_t EngineImpl::AddChangeListener(std::function<void()> listener) {
  return listeners_.Add(std::move(listener));
}

void EngineImpl::RemoveChangeListener(uint64_t id) { listeners_.Remove(id); }

void EngineImpl::NotifyChange() { listeners_.Notify(); }

void EngineImpl::MarkDirty(std::vector<TaskId> work) {
  // Everything downstream of a changed value may change, so it is marked now; whether it
  // really changes is found out (verify, or execute with cutoff) when somebody reads it.
  // Marking stops at tasks already dirty: their readers were marked with them.
  while (!work.empty()) {
    // In memory only: a task evicted whole passes nothing on (MarkOneDirty), so loading
    // it back for this would only undo the eviction.
    TaskState* task = InMemory(work.back());
    work.pop_back();
    if (task == nullptr) continue;
    MutexLock lock(&task->mu);
    MarkOneDirty(*task, &work);
  }
}

void EngineImpl::MarkOneDirty(TaskState& task, std::vector<TaskId>* readers) {
  // Evicted whole: the stored record stands for it. It had no reader in memory, and a
  // restore finds the change among the changed inputs or verifies (TrustRestored).
  if (task.gone) return;
  if (StampsCurrent(task.phase)) {  // an evicted task passes change on like a clean one
    task.phase = Phase::kDirty;
  } else if (task.phase == Phase::kRunning && !task.stale) {
    // Running (executing, verifying, or reloading evicted values): what it publishes is
    // stale already, and it refreshes again.
    task.stale = true;
  } else {
    return;
  }
  task.dependents.ForEach([&](const Dependent& d) { readers->push_back(d.reader); });
}

}  // namespace turbine::internal

namespace turbine {

uint64_t Engine::AddChangeListener(std::function<void()> listener) {
  return impl_->AddChangeListener(std::move(listener));
}

void Engine::RemoveChangeListener(uint64_t id) { impl_->RemoveChangeListener(id); }

Invalidator CurrentInvalidator() {
  const internal::ThreadContext& context = internal::tls_context;
  if (context.exec == nullptr) {
    std::fprintf(stderr, "turbine: CurrentInvalidator() called outside a task body\n");
    std::abort();
  }
  const internal::FunctionInfo& fn = *context.exec->task->fn;
  if (!fn.session_dependent) {
    // A non-session-dependent result restored after a restart is trusted without
    // executing, so an invalidation that happened while no engine ran would be lost.
    Fail("CurrentInvalidator() needs a session-dependent function; " + fn.name +
         " is not (see FunctionOptions)");
  }
  return Invalidator(context.engine->invalidation_target(), context.exec->task->id);
}

template <class Action>
void Invalidator::ForEachEngine(const std::vector<Invalidator>& invalidators, Action action) {
  // Grouped by engine; almost always there is one.
  std::vector<std::pair<internal::InvalidationTarget*, std::vector<TaskId>>> groups;
  for (const Invalidator& invalidator : invalidators) {
    internal::InvalidationTarget* target = invalidator.target_.get();
    if (target == nullptr) continue;
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const auto& g) { return g.first == target; });
    if (group == groups.end()) {
      groups.push_back({target, {}});
      group = std::prev(groups.end());
    }
    group->second.push_back(invalidator.task_);
  }
  // The targets stay alive: `invalidators` holds a reference to each. Under the target's
  // lock, the engine is not destroyed meanwhile.
  for (auto& [target, ids] : groups) {
    std::shared_lock lock(target->mu);
    if (target->engine != nullptr) action(*target->engine, std::move(ids));
  }
}

void Invalidator::RecheckAll(const std::vector<Invalidator>& invalidators) {
  // Planned and finished under each engine's target lock, looked at without it
  // (EngineImpl::PlanRechecks).
  std::vector<std::pair<std::shared_ptr<internal::InvalidationTarget>,
                        internal::EngineImpl::RecheckPlan>>
      plans;
  ForEachEngine(invalidators, [&](internal::EngineImpl& engine, std::vector<TaskId> ids) {
    plans.emplace_back(engine.invalidation_target(), engine.PlanRechecks(std::move(ids)));
  });
  for (auto& [target, plan] : plans) {
    internal::EngineImpl::RunRechecks(target, &plan);
    if (plan.changed.empty()) continue;
    std::shared_lock lock(target->mu);
    if (target->engine != nullptr) target->engine->InvalidateMany(std::move(plan.changed));
  }
}

void Invalidator::InvalidateAll(const std::vector<Invalidator>& invalidators) {
  ForEachEngine(invalidators, [](internal::EngineImpl& engine, std::vector<TaskId> ids) {
    engine.InvalidateMany(std::move(ids));
  });
}

void Invalidator::MarkAll(const std::vector<Invalidator>& invalidators) {
  ForEachEngine(invalidators, [](internal::EngineImpl& engine, std::vector<TaskId> ids) {
    engine.InvalidateMany(std::move(ids), ExecutionReason::kInvalidated,
                          /*notify=*/false);
  });
}

void Invalidator::TellListeners(const std::vector<Invalidator>& invalidators) {
  ForEachEngine(invalidators,
                [](internal::EngineImpl& engine, std::vector<TaskId>) { engine.NotifyChange(); });
}

void Invalidator::Invalidate() const {
  if (target_ == nullptr) return;
  std::shared_lock lock(target_->mu);
  if (target_->engine != nullptr) target_->engine->Invalidate(task_);
}

}  // namespace turbine
