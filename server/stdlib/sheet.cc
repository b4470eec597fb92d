// sheet.cc — sheet.eval and sheet.refs: a spreadsheet whose cells are inputs (set with
// SetInputs / `turbine set`), each an integer or a formula string (sheet_formula.h).
//
// Every cell is its own task: sheet.eval(A) reads input A and awaits sheet.eval of each
// cell its formula names, so the engine recomputes only the dependents of a changed input
// and stops where a value comes out equal.
//
// Cycles. The engine notices a task awaiting itself and fails that read with a message
// that names functions ("cycle detected: sheet.eval -> sheet.eval"); the task whose read
// failed records no dependency on the task it tried to read. So a cell that gets a cycle
// error from a reference (the engine's, or the referenced cell's own) walks the references
// itself, through sheet.refs, which reads only inputs. If the walk comes back to the cell,
// it fails with a message naming the cells. Because the walk read sheet.refs of every cell
// on the cycle, changing any of their formulas invalidates the error, whoever detected it.
// A cell that merely refers to a cycle passes the cycle's error on like any other.
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
      source.error = "cell " + name + " is not defined";
    } else {
      source.error = "cell " + name + ": " + read_error;
    }
  } else if (input->is<int64_t>()) {
    source.number = input->as<int64_t>();
  } else if (input->is<std::string>()) {
    absl::StatusOr<sheet::Formula> formula = sheet::ParseFormula(input->as<std::string>());
    if (formula.ok()) {
      source.formula = std::move(*formula);
    } else {
      source.error = "cell " + name + ": " + std::string(formula.status().message());
    }
  } else {
    source.error =
        "cell " + name + ": expected an integer or a formula string, got " + KindOf(*input);
  }
  return source;
}

void CheckCellName(const std::string& function, const std::string& name) {
  if (!sheet::IsCellName(name)) {
    Fail(function + ": '" + name +
         "' is not a cell name (letters, digits and '_', not starting with a digit)");
  }
}

std::string CycleMessage(const std::vector<std::string>& path) {
  std::string text = std::string(kSheetCyclePrefix) + path.front() + " refers to itself (";
  for (size_t i = 0; i < path.size(); ++i) text += (i > 0 ? " -> " : "") + path[i];
  return text + ")";
}

// MayLeadBack tells whether a referenced cell's error leaves open that the reference leads
// back to the cell that made it: an engine cycle error, or the cycle error of the referenced
// cell itself. Another cell's cycle error, passed on, means the referenced cell is on no
// cycle, so on none through here: the cells that merely read a cycle walk nothing.
bool MayLeadBack(const std::string& ref, const absl::Status& error) {
  if (error.code() != absl::StatusCode::kFailedPrecondition) return false;
  const std::string_view message(error.message().data(), error.message().size());
  if (!message.starts_with(kSheetCyclePrefix)) return true;
  return message.substr(kSheetCyclePrefix.size()).starts_with(ref + " refers");
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
    read_error = error.what();
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
    read_error = error.what();
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
  for (size_t i = 0; i < pending.size(); ++i) {
    try {
      const int64_t value = co_await pending[i];
      values[i] = value;
    } catch (const TaskError& error) {
      errors[i] = absl::Status(error.code(), error.what());
      if (MayLeadBack(formula.refs[i], errors[i])) may_lead_back.push_back(formula.refs[i]);
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
      if (!visited.insert(next).second) continue;
      std::vector<std::string> next_refs = co_await sheet_refs(next);
      stack.push_back(Frame{next, std::move(next_refs)});
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
