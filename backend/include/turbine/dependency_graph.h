// dependency_graph.h — a read-only picture of what a task depends on (Engine::Describe).
//
// The picture is taken task by task, each under its own lock, while the engine goes on:
// it is exact for every task it shows at the moment it looked at that task, not one
// snapshot of the whole engine. Describing neither executes nor verifies anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "turbine/raw_vc.h"

namespace turbine {

// TaskPhase is where a task is in its life.
enum class TaskPhase : uint8_t {
  kNew,      // never executed (nor restored): nothing to show yet
  kDirty,    // something it read may have changed: its next read verifies or executes it
  kRunning,  // being verified or executed now
  kClean,    // its output and cells are current
};
const char* TaskPhaseName(TaskPhase phase);  // "new", "dirty", "running", "clean"

struct GraphNode {
  TaskId task = kNoTask;
  std::string function;  // "turbine.input" for an input
  uint32_t version = 0;
  std::string args;      // in short (short_text.h); an input's is its key
  RawVc receiver;        // a method's `this`; none otherwise
  TaskPhase phase = TaskPhase::kNew;
  bool failed = false;            // the last result is an error
  bool session_dependent = false;  // reads the world outside the engine (files)
  // Restored from the backing store and not executed in this process.
  bool from_disk = false;
  bool from_shared = false;  // adopted from the shared cache tier, not executed since
  uint32_t executions = 0;              // bodies run in this process
  uint64_t last_execution_micros = 0;   // wall time of the last one (0: none here)
  uint32_t cells = 0;
  uint32_t depth = 0;  // edges from the root
};

// GraphEdge: `reader` read `slot` (an output or a cell of slot.task) in its last execution.
struct GraphEdge {
  TaskId reader = kNoTask;
  RawVc slot;
};

struct DependencyGraph {
  TaskId root = kNoTask;
  std::vector<GraphNode> nodes;  // breadth first from the root; the root first
  std::vector<GraphEdge> edges;  // in each reader's read order
  // Some dependencies were left out: deeper than asked, or past the node limit.
  bool truncated = false;
};

struct DescribeOptions {
  uint32_t max_depth = UINT32_MAX;  // 0: the root alone
  size_t max_nodes = 10000;
};

}  // namespace turbine
