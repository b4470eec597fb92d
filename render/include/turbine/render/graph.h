// graph.h — a task's dependency cone (a GraphReply) as JSON, Graphviz DOT or SVG: what
// `turbine graph` prints and the status page draws.
//
// Thread-safety: pure functions; DotToSvg serializes its use of Graphviz (global state).
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json.hpp>
#include <string>

#include "turbine/v1/turbine.pb.h"

namespace turbine::render {

// GraphJson: {"root":12,"truncated":false,"nodes":[{"task":12,"function":…,"args":…,
// "phase":"clean",…}],"edges":[{"reader":12,"task":13,"slot":"output"}]}.
nlohmann::json GraphJson(const v1::GraphReply& graph);

// GraphDot: one box per task (function, arguments, last duration), coloured by phase,
// an arrow from each reader to what it read.
// When the graph is truncated, `truncated_note` says so in the picture.
std::string GraphDot(
    const v1::GraphReply& graph,
    const std::string& truncated_note = "(more dependencies left out: raise --depth)");

// DotToSvg lays `dot` out with Graphviz's library ("dot" layout) and renders SVG.
// Errors: kInvalidArgument if Graphviz cannot read it, kInternal if layout fails.
absl::StatusOr<std::string> DotToSvg(const std::string& dot);

}  // namespace turbine::render
