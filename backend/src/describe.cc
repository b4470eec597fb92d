// describe.cc — Engine::Describe: a task's dependency cone, read task by task.
#include <absl/container/flat_hash_map.h>

#include <deque>

#include "engine_impl.h"
#include "reclaim.h"

namespace turbine::internal {
namespace {

TaskPhase PublicPhase(Phase phase, bool has_output) {
  switch (phase) {
    case Phase::kScheduled:
      return TaskPhase::kNew;
    case Phase::kDirty:
      return has_output ? TaskPhase::kDirty : TaskPhase::kNew;
    case Phase::kRunning:
      return TaskPhase::kRunning;
    case Phase::kClean:
    case Phase::kEvicted:  // current; its values are on disk
      return TaskPhase::kClean;
  }
  return TaskPhase::kNew;
}

}  // namespace

absl::StatusOr<DependencyGraph> EngineImpl::Describe(RawVc vc, const DescribeOptions& options) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  TaskState* root = Task(vc.task);
  if (root == nullptr) {
    return absl::NotFoundError("no task " + std::to_string(vc.task) + " in this engine");
  }
  DependencyGraph graph;
  graph.root = root->id;
  absl::flat_hash_map<TaskId, uint32_t> depth_of;  // tasks seen, and their depth
  std::deque<TaskState*> queue{root};
  depth_of[root->id] = 0;
  std::vector<Dep> deps;
  while (!queue.empty()) {
    TaskState* task = queue.front();
    queue.pop_front();
    GraphNode node;
    node.task = task->id;
    node.function = task->fn->name;
    node.version = task->fn->version;
    node.receiver = task->receiver();
    node.session_dependent = task->fn->session_dependent;
    node.depth = depth_of[task->id];
    task->fn->describe_args(task->args(), &node.args);
    {
      MutexLock lock(&task->mu);
      const bool has_output = task->output.kind() != OutputKind::kNone;
      node.phase = task->fn->kind == FunctionKind::kInput && has_output
                       ? TaskPhase::kClean  // an input is never executed: set is current
                       : PublicPhase(task->phase, has_output);
      node.failed = task->output.kind() == OutputKind::kError;
      node.executions = task->executions;
      node.last_execution_micros = task->last_execution_micros;
      node.from_shared = task->from_shared;
      node.from_disk = has_output && task->executions == 0 && !task->from_shared &&
                       task->fn->kind != FunctionKind::kInput;
      node.cells = static_cast<uint32_t>(task->cells().size());
      deps.assign(task->deps().begin(), task->deps().end());  // copied: the next task is read under its own lock
    }
    graph.nodes.push_back(std::move(node));
    const uint32_t depth = graph.nodes.back().depth;
    for (const Dep& dep : deps) {
      if (depth >= options.max_depth) {
        graph.truncated = true;
        break;
      }
      auto [it, inserted] = depth_of.try_emplace(dep.slot.task, depth + 1);
      if (inserted) {
        TaskState* next = depth_of.size() <= options.max_nodes ? Task(dep.slot.task) : nullptr;
        if (next == nullptr) {  // past the limit, or gone (the edge would dangle)
          depth_of.erase(it);
          graph.truncated = true;
          continue;
        }
        queue.push_back(next);
      }
      graph.edges.push_back(GraphEdge{task->id, dep.slot});
    }
  }
  return graph;
}

}  // namespace turbine::internal

namespace turbine {

const char* TaskPhaseName(TaskPhase phase) {
  switch (phase) {
    case TaskPhase::kNew:
      return "new";
    case TaskPhase::kDirty:
      return "dirty";
    case TaskPhase::kRunning:
      return "running";
    case TaskPhase::kClean:
      return "clean";
  }
  return "?";
}

absl::StatusOr<DependencyGraph> Engine::Describe(RawVc vc, const DescribeOptions& options) {
  return impl_->Describe(vc, options);
}

}  // namespace turbine
