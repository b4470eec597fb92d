// invalidation.cc — inputs and the dirty marking that follows their changes.
#include <tuple>

#include "engine_impl.h"
#include "turbine/function.h"

namespace turbine::internal {
namespace {

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

}  // namespace

RawVc InputVc(const std::string& key) { return CurrentEngineOrDie().InputVc(key); }

RawVc EngineImpl::InputVc(const std::string& key) {
  std::tuple<std::string> args(key);
  return Call(InputFunction(), RawVc{}, &args);
}

void EngineImpl::SetInputs(std::vector<InputValue> values) {
  std::vector<TaskId> readers;
  {
    MutexLock writer(&input_writer_mu_);
    revision_.fetch_add(1);
    for (InputValue& input : values) {
      TaskState* task = Task(InputVc(input.key).task);
      Output next;
      next.kind = OutputKind::kValue;
      next.type = input.type;
      next.value = std::move(input.value);
      MutexLock lock(&task->mu);
      if (task->output.SameAs(next)) continue;  // equal value: nobody is invalidated
      task->output = std::move(next);
      task->output_changed_at = NextStamp();
      for (const Dependent& dependent : task->dependents) readers.push_back(dependent.reader);
    }
  }
  MarkDirty(std::move(readers));
}

void EngineImpl::MarkDirty(std::vector<TaskId> work) {
  // Everything downstream of a changed value may change, so it is marked now; whether it
  // really changes is found out (verify, or execute with cutoff) when somebody reads it.
  // Marking stops at tasks already dirty: their readers were marked with them.
  while (!work.empty()) {
    TaskState* task = Task(work.back());
    work.pop_back();
    if (task == nullptr) continue;
    MutexLock lock(&task->mu);
    if (task->phase == Phase::kClean) {
      task->phase = Phase::kDirty;
    } else if (task->phase == Phase::kRunning && !task->stale) {
      task->stale = true;
    } else {
      continue;
    }
    for (const Dependent& dependent : task->dependents) work.push_back(dependent.reader);
  }
}

}  // namespace turbine::internal
