// sheet.cc — sheet.eval and sheet.refs: a spreadsheet whose cells are inputs (set with
// SetInputs / `turbine set`), each an integer or a formula string (sheet_formula.h).
//
// Every cell is its own task: sheet.eval(A) reads input A and awaits sheet.eval of each
// cell its formula names, so the engine recomputes only the dependents of a changed input
// and stops where a value comes out equal.
//
// Cycles. The engine notices a task awaiting itself and fails that read, and the read each
// other task on the cycle waits in, with a message that names functions ("cycle detected:
// sheet.eval -> sheet.eval"); every such read counts as a dependency, so breaking the cycle
// anywhere re-executes all of it. A cell that gets the engine's cycle error is on the cycle;
// one that gets the cycle error of the cell it names might be. Either walks the references
// through sheet.refs (which reads only inputs) to name the cycle from itself, visiting at
// most kCycleSearchCells cells: the message and the work per cell stay bounded whatever
// the cycle's length. A cell that merely refers to a cycle passes its error on.
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sheet_formula.h"
#include "turbine/engine.h"
#include "turbine/server/export.h"
#include "turbine/server/wire_value.h"
#include "turbine/text.h"

namespace turbine::stdlib {
namespace {

// Engine cycles and sheet cycles are both FAILED_PRECONDITION; a sheet cycle's message
// starts with this and names the cell that reports it.
constexpr std::string_view kSheetCyclePrefix = "cycle detected: sheet cell ";
// A cycle is named in full when the walk from the cell finds the way back within this many
// cells; past that, by its first step only.
constexpr size_t kCycleSearchCells = 64;

// CellSource is what a cell's input holds: a number, a formula, or the cell's own error.
struct CellSource {
  std::optional<int64_t> number;
  std::optional<sheet::Formula> formula;
  std::string error;
};

std::string KindOf(const WireValue& value) {
  static_assert(std::variant_size_v<decltype(WireValue::data)> == 9, "a kind for each");
  static constexpr const char* kKinds[] = {"null",     "a bool",   "an integer",
                                           "a double", "a string", "bytes",
                                           "a list",   "a map",    "a task reference"};
  return kKinds[value.data.index()];
}

// Classify turns what reading input `name` gave (a value, or the read's error) into a
// CellSource.
CellSource Classify(const std::string& name, const std::optional<WireValue>& input,
                    const std::string& read_error) {
  CellSource source;
  if (!input.has_value()) {
    // The engine's message for an input that was never set; anything else (say, an input
    // set in-process with a non-wire type) is reported as is.
    if (read_error == "input '" + Echo(name) + "' is not set") {
      source.error = "cell " + Echo(name) + " is not defined";
    } else {
      source.error = "cell " + Echo(name) + ": " + read_error;
    }
  } else if (input->is<int64_t>()) {
    source.number = input->as<int64_t>();
  } else if (input->is<std::string>()) {
    absl::StatusOr<sheet::Formula> formula = sheet::ParseFormula(input->as<std::string>());
    if (formula.ok()) {
      source.formula = std::move(*formula);
    } else {
      source.error = "cell " + Echo(name) + ": " + std::string(formula.status().message());
    }
  } else {
    source.error =
        "cell " + Echo(name) + ": expected an integer or a formula string, got " + KindOf(*input);
  }
  return source;
}

void CheckCellName(const std::string& function, const std::string& name) {
  if (!sheet::IsCellName(name)) {
    Fail(function + ": '" + Echo(name) +
         "' is not a cell name (letters, digits and '_', not starting with a digit)");
  }
}

std::string CycleMessage(const std::vector<std::string>& path) {
  std::string text = std::string(kSheetCyclePrefix) + Echo(path.front()) + " refers to itself (";
  for (size_t i = 0; i < path.size(); ++i) text += (i > 0 ? " -> " : "") + Echo(path[i]);
  return text + ")";
}

// LongCycleMessage names a cycle the walk could not trace back within kCycleSearchCells.
std::string LongCycleMessage(const std::string& name, const std::string& next) {
  const std::string cell = Echo(name);
  return std::string(kSheetCyclePrefix) + cell + " refers to itself (" + cell + " -> " +
         Echo(next) + " -> ... -> " + cell + ", a cycle through more than " +
         std::to_string(kCycleSearchCells) + " cells)";
}

// IsEngineCycle tells whether a read failed with the engine's own cycle error: the reading
// cell is on the cycle.
bool IsEngineCycle(const absl::Status& error) {
  const std::string_view message(error.message().data(), error.message().size());
  return error.code() == absl::StatusCode::kFailedPrecondition &&
         !message.starts_with(kSheetCyclePrefix);
}

// MayLeadBack tells whether a referenced cell's error leaves open that the reference leads
// back to the cell that made it: an engine cycle error, or the cycle error of the referenced
// cell itself. Another cell's cycle error, passed on, means the referenced cell is on no
// cycle, so on none through here: the cells that merely read a cycle walk nothing.
bool MayLeadBack(const std::string& ref, const absl::Status& error) {
  if (error.code() != absl::StatusCode::kFailedPrecondition) return false;
  const std::string_view message(error.message().data(), error.message().size());
  if (!message.starts_with(kSheetCyclePrefix)) return true;
  // Named as CycleMessage names it (a long name cut, the same way every time).
  return message.substr(kSheetCyclePrefix.size()).starts_with(Echo(ref) + " refers");
}

Task<std::vector<std::string>> RefsImpl(std::string name);
const Function<RefsImpl> sheet_refs{
    "sheet.refs", 1,
    "the cells named in the formula of cell `name`, in order (none for a number or an error)"};
Task<std::vector<std::string>> RefsImpl(std::string name) {
  CheckCellName("sheet.refs", name);
  std::optional<WireValue> input;
  std::string read_error;
  try {
    input = co_await Input<WireValue>(name);
  } catch (const TaskError& error) {
    read_error = error.message();
  }
  CellSource source = Classify(name, input, read_error);
  if (!source.formula.has_value()) co_return std::vector<std::string>{};
  co_return std::move(source.formula->refs);
}
const server::Export export_refs{sheet_refs, {"name"}};

Task<int64_t> EvalImpl(std::string name);
const Function<EvalImpl> sheet_eval{
    "sheet.eval", 1,
    "the value of spreadsheet cell `name`: an input holding an integer or a formula"};
Task<int64_t> EvalImpl(std::string name) {
  CheckCellName("sheet.eval", name);
  // The input first: a re-verification then stops at a changed formula before it waits
  // on cells the old formula named.
  std::optional<WireValue> input;
  std::string read_error;
  try {
    input = co_await Input<WireValue>(name);
  } catch (const TaskError& error) {
    read_error = error.message();
  }
  CellSource source = Classify(name, input, read_error);
  if (!source.error.empty()) Fail(source.error);
  if (source.number.has_value()) co_return *source.number;
  const sheet::Formula& formula = *source.formula;

  // Every referenced cell is called before any is awaited, so they can run in parallel.
  // All are awaited even after an error: whether this cell is on a cycle must not depend
  // on which of its references failed first.
  std::vector<Vc<int64_t>> pending;
  pending.reserve(formula.refs.size());
  for (const std::string& ref : formula.refs) pending.push_back(sheet_eval(ref));
  std::vector<std::optional<int64_t>> values(formula.refs.size());
  std::vector<absl::Status> errors(formula.refs.size());
  std::vector<std::string> may_lead_back;
  const std::string* on_cycle_through = nullptr;  // a reference the engine says leads back
  for (size_t i = 0; i < pending.size(); ++i) {
    ThrowIfCancelled();
    try {
      const int64_t value = co_await pending[i];
      values[i] = value;
    } catch (const TaskError& error) {
      errors[i] = absl::Status(error.code(), error.message());
      if (MayLeadBack(formula.refs[i], errors[i])) may_lead_back.push_back(formula.refs[i]);
      if (on_cycle_through == nullptr && IsEngineCycle(errors[i])) {
        on_cycle_through = &formula.refs[i];
      }
    }
  }

  if (!may_lead_back.empty()) {
    // Depth-first through the references, in formula order, looking for a way back here.
    // Leaving out references that cannot lead back changes nothing but the cost: whatever
    // they would have marked visited cannot lead back either.
    struct Frame {
      std::string cell;
      std::vector<std::string> refs;
      size_t next = 0;
    };
    std::vector<Frame> stack;
    stack.push_back(Frame{name, std::move(may_lead_back)});
    absl::flat_hash_set<std::string> visited{name};
    while (!stack.empty()) {
      if (stack.back().next == stack.back().refs.size()) {
        stack.pop_back();
        continue;
      }
      const std::string next = stack.back().refs[stack.back().next++];
      if (next == name) {
        std::vector<std::string> path;
        for (const Frame& frame : stack) path.push_back(frame.cell);
        path.push_back(name);
        Fail(CycleMessage(path), absl::StatusCode::kFailedPrecondition);
      }
      if (visited.size() >= kCycleSearchCells) break;
      if (!visited.insert(next).second) continue;
      std::vector<std::string> next_refs = co_await sheet_refs(next);
      stack.push_back(Frame{next, std::move(next_refs)});
    }
    if (on_cycle_through != nullptr) {
      Fail(LongCycleMessage(name, *on_cycle_through), absl::StatusCode::kFailedPrecondition);
    }
  }

  absl::flat_hash_map<std::string_view, size_t> index;
  for (size_t i = 0; i < formula.refs.size(); ++i) index.emplace(formula.refs[i], i);
  co_return sheet::Evaluate(formula.root, name, [&](const std::string& cell) -> int64_t {
    const size_t i = index.at(cell);  // every cell the formula names is in refs
    if (!values[i].has_value()) Fail(std::string(errors[i].message()), errors[i].code());
    return *values[i];
  });
}
const server::Export export_eval{sheet_eval, {"name"}};

}  // namespace
}  // namespace turbine::stdlib
