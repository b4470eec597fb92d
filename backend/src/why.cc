// why.cc — Engine::Why and Engine::RecentExecutions: why values were computed (why.h).
//
// Recording happens where the engine already is: the refresh knows why it executes (the
// first execution, the forced reason, or the dependency whose check failed) and the commit
// knows whether the output changed. Both go into the task (reason, cause, sequence) and
// into a fixed ring of plain entries; text is made only when somebody asks.
#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine {

std::string_view ReasonName(ExecutionReason reason) {
  switch (reason) {
    case ExecutionReason::kNone:
      return "not executed";
    case ExecutionReason::kFirst:
      return "first execution";
    case ExecutionReason::kDependencyChanged:
      return "dependency changed";
    case ExecutionReason::kInvalidated:
      return "invalidated";
    case ExecutionReason::kRestart:
      return "restart re-validation";
    case ExecutionReason::kGarbageCollected:
      return "garbage collected";
    case ExecutionReason::kCycle:
      return "cycle changed";
    case ExecutionReason::kRetry:
      return "retry after a transient error";
  }
  return "unknown";
}

}  // namespace turbine

namespace turbine::internal {
namespace {

std::string Hex(uint64_t bits) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(bits));
  return text;
}

// Why walks from one task down to the causes, depth first, one task lock at a time. The
// walk keeps its own stack, not the thread's: a chain of causes can be as long as the
// graph is deep (a sheet of 20,000 cells in a row), and `max_steps` is the caller's.
class WhyWalk {
 public:
  WhyWalk(EngineImpl& engine, const WhyOptions& options, WhyReport& report)
      : engine_(engine), options_(options), report_(report) {}

  void Explain(TaskId root);

 private:
  // Explained is a step taken whose causes are still to be walked: first the dependency
  // whose change made it execute, then (unless the step is itself an early cutoff) the
  // dependencies that were early cutoffs for it.
  struct Explained {
    uint32_t depth = 0;
    bool cutoff = false;
    TaskId cause = kNoTask;  // still to be explained; kNoTask once it is (or if none)
    TaskId last_cause = kNoTask;  // the step's cause: not an early cutoff for it
    uint64_t last_execution = 0;
    std::vector<Dep> deps;
    size_t next_dep = 0;
    size_t cutoffs = 0;
  };

  // Visit adds the step of task `id` to the report and, if its causes are to be walked,
  // an Explained for it to the stack.
  void Visit(TaskId id, uint32_t depth, bool cutoff);
  // NextCutoff returns the next dependency of `task` that was an early cutoff for it, or
  // kNoTask when there is none left.
  TaskId NextCutoff(Explained& task);

  EngineImpl& engine_;
  const WhyOptions& options_;
  WhyReport& report_;
  absl::flat_hash_set<TaskId> seen_;
  std::vector<Explained> stack_;
};

void WhyWalk::Explain(TaskId root) {
  Visit(root, 0, /*cutoff=*/false);
  while (!stack_.empty()) {
    Explained& top = stack_.back();
    const uint32_t depth = top.depth + 1;
    if (top.cause != kNoTask) {
      const TaskId cause = std::exchange(top.cause, kNoTask);
      Visit(cause, depth, /*cutoff=*/false);  // may grow the stack: `top` is not used after
      continue;
    }
    const TaskId cutoff = top.cutoff ? kNoTask : NextCutoff(top);
    if (cutoff == kNoTask) {
      stack_.pop_back();
      continue;
    }
    Visit(cutoff, depth, /*cutoff=*/true);
  }
}

TaskId WhyWalk::NextCutoff(Explained& task) {
  // Dependencies that executed after this task last did (or at all, for one restored) and
  // still carry the stamp it read: each was an early cutoff for this task.
  while (task.next_dep < task.deps.size() && task.cutoffs < options_.max_cutoffs_per_task) {
    const Dep& dep = task.deps[task.next_dep++];
    if (dep.slot.task == task.last_cause || seen_.contains(dep.slot.task)) continue;
    // Only in memory: one that is not has not executed here since (a task evicted whole
    // forgets it did), and loading it would only make `why` change what it describes.
    TaskState* target = engine_.InMemory(dep.slot.task);
    if (target == nullptr) continue;
    bool equal = false;
    uint64_t its_execution = 0;
    {
      MutexLock lock(&target->mu);
      equal = target->last_execution > task.last_execution && target->phase == Phase::kClean &&
              target->SlotChangedAt(dep.slot) == dep.observed;
      its_execution = target->last_execution;
    }
    if (!equal) continue;
    // One whose output that execution changed was no cutoff: on a cycle, a reader runs
    // inside it and ends first, and reads its new stamp when the cycle settles.
    if (ExecutionEntry entry;
        engine_.history.EntryOf(its_execution, &entry) && entry.output_changed) {
      continue;
    }
    ++task.cutoffs;
    return dep.slot.task;
  }
  return kNoTask;
}

void WhyWalk::Visit(TaskId id, uint32_t depth, bool cutoff) {
  if (report_.steps.size() >= options_.max_steps) {
    report_.truncated = true;
    return;
  }
  if (!seen_.insert(id).second) return;  // explained above
  WhyStep step;
  step.depth = depth;
  step.task = id;
  TaskState* task = engine_.Task(id);
  if (task == nullptr) {
    step.kind = WhyStep::Kind::kGone;
    step.text = engine_.GoneText(id);
    report_.steps.push_back(std::move(step));
    return;
  }
  step.function = task->fn->name;
  step.version = task->fn->version;
  task->fn->describe_args(task->args(), &step.args);
  step.receiver = task->receiver().task;
  std::vector<Dep> deps;
  uint64_t last_execution = 0;
  OutputDigest current;
  bool has_output = false;
  bool trusted = false;  // restored and clean, linked to nothing (TrustRestored)
  bool running = false;  // its first execution (or verification) is under way
  bool loaded_back = false;  // evicted whole and loaded again: its past here is lost
  bool adopted = false;      // its result came from the shared tier, verified here
  {
    MutexLock lock(&task->mu);
    loaded_back = task->loaded_back;
    adopted = task->from_shared;
    has_output = task->output.kind() != OutputKind::kNone;
    trusted = task->unlinked && task->phase == Phase::kClean;
    step.dirty = has_output && task->phase != Phase::kClean;
    running = task->phase == Phase::kRunning;
    step.executions = task->executions;
    step.reason = task->last_reason;
    step.cause = task->last_cause;
    last_execution = task->last_execution;
    if (task->fn->kind == FunctionKind::kInput) {
      current = DigestOf(task->output);
    } else {
      deps.assign(task->deps().begin(), task->deps().end());
    }
  }

  if (task->fn->kind == FunctionKind::kInput) {
    step.kind = WhyStep::Kind::kInput;
    step.dirty = false;  // an input is current once set
    InputChangeEntry change;
    // Not set (never, or unset) reads as such, not as the digest of the error it reads as.
    const OutputDigest not_set = DigestOf(NotSetOutput(InputKeyOf(*task)));
    const auto text_of = [&](const OutputDigest& digest) {
      const bool unset = digest.kind == not_set.kind && digest.bits == not_set.bits;
      return unset ? std::string("(not set)") : engine_.DigestText(digest, /*load=*/true);
    };
    bool forgotten = false;  // changes older than the ring's have been let go
    if (engine_.history.LatestInputChange(id, &change, &forgotten)) {
      step.output_changed = true;
      step.end_unix_micros = change.unix_micros;
      step.output_before = change.before.kind == OutputKind::kNone ? "" : text_of(change.before);
      step.output_after = text_of(change.after);
      step.text = "input " + step.args +
                  " changed: " + (step.output_before.empty() ? "(not set)" : step.output_before) +
                  " -> " + step.output_after;
    } else {
      step.output_after = text_of(current);
      step.text = "input " + step.args + " = " + step.output_after +
                  (forgotten ? " (no change of it among the last " +
                                   std::to_string(kRecentInputChanges) +
                                   " input changes; older ones are no longer recorded)"
                             : " (no change of it recorded since the engine started)");
    }
    report_.steps.push_back(std::move(step));
    return;
  }

  ExecutionEntry entry;
  const bool recorded = last_execution != 0 && engine_.history.EntryOf(last_execution, &entry);
  if (recorded) {
    step.end_unix_micros = entry.end_unix_micros;
    step.duration_nanos = entry.nanos;
    step.output_changed = entry.output_changed;
    step.output_before = engine_.DigestText(entry.before, /*load=*/true);
    step.output_after = engine_.DigestText(entry.after, /*load=*/true);
  }
  std::string reason(ReasonName(step.reason));
  if (step.cause != kNoTask) reason += " (" + engine_.DescribeTask(step.cause) + ")";
  std::string output;
  if (recorded) {
    output = entry.output_changed
                 ? "; output " +
                       (step.output_before.empty() ? std::string("(none)") : step.output_before) +
                       " -> " + step.output_after
                 : "; output unchanged";
  } else if (last_execution != 0) {
    output = "; details of that execution are no longer recorded";
  }
  if (cutoff) {
    step.kind = WhyStep::Kind::kCutoff;
    step.text = "re-executed after its reader last executed (" + reason +
                ") and came out equal: early cutoff, the reader did NOT re-execute";
  } else if (last_execution != 0 && adopted) {
    step.kind = WhyStep::Kind::kShared;
    step.text = "adopted from the shared cache: another daemon computed it, and what it read "
                "was verified here" + output;
  } else if (last_execution != 0) {
    step.kind = WhyStep::Kind::kExecuted;
    step.text = "executed: " + reason + output;
  } else if (has_output) {
    step.kind = WhyStep::Kind::kRestored;
    // Dirty: not verified since it was loaded (or something changed since it was).
    step.text = trusted     ? "restored from the store and trusted: nothing it read can have "
                              "changed since it was stored, so nothing it read was loaded"
                : step.dirty ? "restored from the store: not executed since it was loaded"
                             : "restored from the store and verified: not executed since it "
                               "was loaded";
    if (loaded_back) {
      step.text += " (it had left memory under the memory limit; what it did before is not "
                   "kept)";
    }
  } else {
    step.kind = WhyStep::Kind::kNotRun;
    step.text = running ? "not executed yet: its first execution is running now"
                        : "never executed: nothing has read it yet";
  }
  if (step.dirty) step.text += " [dirty now: the next read refreshes it]";
  Explained explained;
  explained.depth = depth;
  explained.cutoff = cutoff;
  if (last_execution != 0 && step.reason == ExecutionReason::kDependencyChanged) {
    explained.cause = step.cause;
  }
  explained.last_cause = step.cause;
  explained.last_execution = last_execution;
  report_.steps.push_back(std::move(step));
  if (!cutoff) {
    // Not for one loaded back after an eviction: it may have executed for them before it
    // left.
    if (last_execution != 0 || !loaded_back) explained.deps = std::move(deps);
  }
  if (explained.cause != kNoTask || !explained.deps.empty()) stack_.push_back(std::move(explained));
}

}  // namespace

OutputDigest DigestOf(const Output& output) {
  switch (output.kind()) {
    case OutputKind::kNone:
      return {};
    case OutputKind::kValue:
      // An evicted value (evict.cc) is not hashed: that would mean loading it back.
      if (output.data() == nullptr) return {};
      return {OutputKind::kValue, output.type()->hash(output.data(), 0)};
    case OutputKind::kRef:
      return {OutputKind::kRef, output.ref().task};
    case OutputKind::kError:
      return {OutputKind::kError, HashValue(output.error().message, 0)};
  }
  return {};
}

OutputDigest DigestOfCell(const CellSlot* cell) {
  if (cell == nullptr || cell->value == nullptr) return {};
  return {OutputKind::kValue, ValueTypeById(cell->type)->hash(cell->value.get(), 0)};
}

std::string EngineImpl::DigestText(const OutputDigest& digest, bool load) {
  switch (digest.kind) {
    case OutputKind::kNone:
      return "";
    case OutputKind::kValue:
      return Hex(digest.bits);
    case OutputKind::kRef:
      if (load) Task(digest.bits);  // a reference restored from the store, say
      return "ref " + DescribeTask(digest.bits);
    case OutputKind::kError:
      return "error " + Hex(digest.bits);
  }
  return "";
}

ExecutionRecord EngineImpl::RecordOf(const ExecutionEntry& entry) {
  ExecutionRecord record;
  record.sequence = entry.sequence;
  record.task = entry.task;
  record.function = entry.fn->name;
  std::string function;  // as entry.fn's
  DescribeArgs(entry.task, &function, &record.args);
  record.end_unix_micros = entry.end_unix_micros;
  record.duration_nanos = entry.nanos;
  record.reason = entry.reason;
  record.cause = entry.cause;
  record.reason_text = std::string(ReasonName(entry.reason));
  if (entry.cause != kNoTask) {
    record.cause_text = DescribeTask(entry.cause);
    record.reason_text += ": " + record.cause_text;
  }
  record.failed = entry.failed;
  record.output_changed = entry.output_changed;
  record.output_before = DigestText(entry.before);
  record.output_after = DigestText(entry.after);
  return record;
}

std::vector<ExecutionRecord> EngineImpl::RecentExecutions(size_t max) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  std::vector<ExecutionRecord> records;
  for (const ExecutionEntry& entry : history.Executions(max)) records.push_back(RecordOf(entry));
  return records;
}

std::string EngineImpl::GoneText(TaskId id) {
  const std::string prefix = "@" + std::to_string(id) + " no longer exists: ";
  if (store_ == nullptr) return prefix + "not in memory";
  absl::StatusOr<std::optional<StoredTask>> stored = store_->ReadTask(id);
  if (!stored.ok()) return prefix + "the store cannot read it: " + stored.status().ToString();
  if (!stored->has_value()) return prefix + "removed from the store (garbage collected)";
  std::string name;
  uint32_t version = 0;
  if (!PeekFunction((*stored)->identity, &name, &version)) {
    return prefix + "its stored record cannot be decoded";
  }
  const FunctionInfo* now = FindFunction(name);
  if (FindFunctionVersion(name, version) == nullptr) {
    return prefix + "it is " + name + " version " + std::to_string(version) +
           (now != nullptr ? ", and this build has version " + std::to_string(now->version) +
                                 " (a version bump)"
                           : ", which this build does not have");
  }
  return prefix + "its stored record (" + name + ") cannot be used";
}

absl::StatusOr<WhyReport> EngineImpl::Why(RawVc vc, const WhyOptions& options) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  if (Task(vc.task) == nullptr) {
    return absl::NotFoundError("no task " + std::to_string(vc.task) + " in this engine");
  }
  WhyReport report;
  report.root = vc.task;
  WhyWalk walk(*this, options, report);
  walk.Explain(vc.task);
  return report;
}

}  // namespace turbine::internal

namespace turbine {

absl::StatusOr<WhyReport> Engine::Why(RawVc vc, const WhyOptions& options) {
  return impl_->Why(vc, options);
}

std::vector<ExecutionRecord> Engine::RecentExecutions(size_t max) {
  return impl_->RecentExecutions(max);
}

}  // namespace turbine
