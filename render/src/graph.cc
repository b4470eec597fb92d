// graph.cc — dependency cones as JSON, DOT and SVG (graph.h).
#include "turbine/render/graph.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/strings/strip.h>
#include <absl/strings/ascii.h>
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <mutex>
#include <set>
#include <utility>

namespace turbine::render {
namespace {

const char* PhaseName(v1::TaskPhase phase) {
  switch (phase) {
    case v1::TASK_PHASE_NEW:
      return "new";
    case v1::TASK_PHASE_DIRTY:
      return "dirty";
    case v1::TASK_PHASE_RUNNING:
      return "running";
    case v1::TASK_PHASE_CLEAN:
      return "clean";
    default:
      return "unknown";
  }
}

std::string SlotName(const v1::TaskRef& slot) {
  if (slot.cell_type().empty()) return "output";
  return absl::StrCat(slot.cell_type(), "/", slot.cell_index());
}

// Duration in people's units: 850 µs, 12.3 ms, 4.1 s.
std::string Duration(uint64_t micros) {
  if (micros < 1000) return absl::StrCat(micros, " µs");
  if (micros < 1000000) return absl::StrFormat("%.1f ms", static_cast<double>(micros) / 1e3);
  return absl::StrFormat("%.1f s", static_cast<double>(micros) / 1e6);
}

// DotString quotes `text` as a DOT string ("\n" in `text` stays a line break). Graphviz
// reads an entity in a label ("&lt;") as the character it names, so an argument holding
// one showed as another: '&' is written as an entity itself.
std::string DotString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '&') {
      out += "&amp;";
      continue;
    }
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

const char* FillColor(const v1::GraphNode& node) {
  if (node.failed()) return "#f4b6b6";  // red: its result is an error
  switch (node.phase()) {
    case v1::TASK_PHASE_DIRTY:
      return "#ffd59a";  // orange: will be verified or re-executed
    case v1::TASK_PHASE_RUNNING:
      return "#b3d4fc";  // blue
    case v1::TASK_PHASE_NEW:
      return "#e0e0e0";  // grey
    default:
      if (node.from_shared()) return "#b2ebf2";        // cyan: adopted from the shared cache
      return node.from_disk() ? "#e1d5f2" : "#c8e6c9";  // violet: restored; green: clean
  }
}

}  // namespace

nlohmann::json GraphJson(const v1::GraphReply& graph) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const v1::GraphNode& node : graph.nodes()) {
    nlohmann::json out = {
        {"task", node.task()},
        {"function", node.function()},
        {"version", node.version()},
        {"args", node.args()},
        {"phase", PhaseName(node.phase())},
        {"failed", node.failed()},
        {"session_dependent", node.session_dependent()},
        {"from_disk", node.from_disk()},
        {"from_shared", node.from_shared()},
        {"executions", node.executions()},
        {"last_execution_micros", node.last_execution_micros()},
        {"cells", node.cells()},
        {"depth", node.depth()},
    };
    // Null for a function that is not a method: every node has every documented key. The
    // receiver's slot as an edge's: a method called on a cell (`--this 12/File/0`) is
    // another task than on the task's output.
    out["receiver"] =
        node.has_receiver() ? nlohmann::json(node.receiver().task()) : nlohmann::json();
    out["receiver_slot"] =
        node.has_receiver() ? nlohmann::json(SlotName(node.receiver())) : nlohmann::json();
    nodes.push_back(std::move(out));
  }
  nlohmann::json edges = nlohmann::json::array();
  for (const v1::GraphEdge& edge : graph.edges()) {
    edges.push_back(
        {{"reader", edge.reader()}, {"task", edge.slot().task()}, {"slot", SlotName(edge.slot())}});
  }
  return {{"root", graph.root()},
          {"truncated", graph.truncated()},
          {"nodes", std::move(nodes)},
          {"edges", std::move(edges)}};
}

std::string GraphDot(const v1::GraphReply& graph, const std::string& truncated_note) {
  std::string dot =
      "digraph turbine {\n"
      "  rankdir=LR;\n"
      "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
      "  edge [color=\"#607d8b\", arrowsize=0.7];\n";
  for (const v1::GraphNode& node : graph.nodes()) {
    std::string label = node.function();
    if (node.has_receiver()) {
      absl::StrAppend(&label, " on @", node.receiver().task());
      if (!node.receiver().cell_type().empty())
        absl::StrAppend(&label, "/", SlotName(node.receiver()));
    }
    if (!node.args().empty()) absl::StrAppend(&label, "\n", node.args());
    if (node.last_execution_micros() > 0) {
      absl::StrAppend(&label, "\n", Duration(node.last_execution_micros()));
    }
    const std::string tooltip = absl::StrCat(
        "task ", node.task(), " · ", PhaseName(node.phase()), node.failed() ? " · failed" : "",
        node.from_disk() ? " · from disk" : "",
        node.from_shared() ? " · from the shared cache" : "", " · ", node.executions(),
        node.executions() == 1 ? " execution" : " executions");
    absl::StrAppend(&dot, "  t", node.task(), " [id=", DotString(absl::StrCat("task", node.task())),
                    ", label=", DotString(label), ", tooltip=", DotString(tooltip),
                    ", fillcolor=", DotString(FillColor(node)));
    if (node.function() == "turbine.input") absl::StrAppend(&dot, ", shape=ellipse");
    if (node.session_dependent()) absl::StrAppend(&dot, ", peripheries=2");  // the outside world
    if (node.task() == graph.root()) absl::StrAppend(&dot, ", penwidth=2");
    absl::StrAppend(&dot, "];\n");
  }
  std::set<std::pair<uint64_t, uint64_t>> drawn;  // one arrow per pair, however many cells
  for (const v1::GraphEdge& edge : graph.edges()) {
    if (!drawn.emplace(edge.reader(), edge.slot().task()).second) continue;
    absl::StrAppend(&dot, "  t", edge.reader(), " -> t", edge.slot().task(), ";\n");
  }
  if (graph.truncated()) {
    absl::StrAppend(&dot,
                    "  truncated [shape=plaintext, style=\"\", label=", DotString(truncated_note),
                    "];\n");
  }
  return dot + "}\n";
}

namespace {

// What Graphviz said during the current render (guarded by DotToSvg's mutex): it would
// otherwise print to the daemon's stderr, away from the caller who needs it.
std::string& GraphvizMessages() {
  static std::string* const messages = new std::string;
  return *messages;
}

int CollectGraphvizMessage(char* message) {
  constexpr size_t kMaxMessages = 1024;  // what a Status carries of Graphviz's words
  std::string& messages = GraphvizMessages();
  if (messages.size() < kMaxMessages) messages.append(message, 0, kMaxMessages - messages.size());
  return 0;
}

absl::Status GraphvizError(absl::StatusCode code, const char* what) {
  std::string said(absl::StripAsciiWhitespace(GraphvizMessages()));
  if (said.empty()) return absl::Status(code, what);
  return absl::Status(code, absl::StrCat(what, ": ", said));
}

}  // namespace

absl::StatusOr<std::string> DotToSvg(const std::string& dot) {
  // Graphviz keeps global state (its error buffer, the plugin registry): one at a time.
  static std::mutex graphviz_mu;
  std::lock_guard lock(graphviz_mu);
  // One context for the life of the process, never freed. Graphviz's pango text layout
  // remembers the last font it measured by a pointer to the name in the context's font
  // table: freeing the context after a render left the next render comparing against
  // freed memory. Keeping it also saves loading the plugins on every render.
  static GVC_t* const context = [] {
    agseterrf(CollectGraphvizMessage);
    return gvContext();
  }();
  GraphvizMessages().clear();
  Agraph_t* graph = agmemread(dot.c_str());
  if (graph == nullptr) {
    return GraphvizError(absl::StatusCode::kInvalidArgument, "Graphviz could not read the graph");
  }
  std::string svg;
  absl::Status status;
  if (gvLayout(context, graph, "dot") != 0) {
    status = GraphvizError(absl::StatusCode::kInternal, "Graphviz could not lay the graph out");
  } else {
    char* data = nullptr;
    unsigned int length = 0;
    if (gvRenderData(context, graph, "svg", &data, &length) != 0 || data == nullptr) {
      status = GraphvizError(absl::StatusCode::kInternal, "Graphviz could not render SVG");
    } else {
      svg.assign(data, length);
    }
    gvFreeRenderData(data);
    gvFreeLayout(context, graph);
  }
  agclose(graph);
  if (!status.ok()) return status;
  return svg;
}

}  // namespace turbine::render
