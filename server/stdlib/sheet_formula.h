// sheet_formula.h — the formula language of sheet.eval: parsing and evaluation, no engine.
//
//   formula := sum
//   sum     := product (('+' | '-') product)*
//   product := unary (('*' | '/' | '%') unary)*
//   unary   := '-' unary | primary
//   primary := integer | name | name '(' sum (',' sum)* ')' | '(' sum ')'
//   name    := [A-Za-z_][A-Za-z0-9_]*      (a cell, or sum/min/max before '(')
//
// Arithmetic is on int64 with C++'s truncating `/` and `%`; overflow, division and modulo
// by zero are errors, never undefined behaviour. Evaluation is left to right and the first
// error wins, so a formula's error does not depend on how it is evaluated.
#pragma once

#include <absl/functional/function_ref.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::stdlib::sheet {

// Expr is a parsed expression. Chains of operators of one precedence are one node (not a
// left-deep tree), so a long `a + b + ... + z` costs no recursion depth.
struct Expr {
  enum class Kind { kNumber, kCell, kNegate, kChain, kCall };
  Kind kind = Kind::kNumber;
  int64_t number = 0;          // kNumber
  std::string name;            // kCell: the cell; kCall: "sum", "min" or "max"
  std::vector<Expr> operands;  // kNegate: one; kChain: two or more; kCall: the arguments
  std::string ops;             // kChain: ops[i] combines the result so far with operands[i+1]
};

struct Formula {
  Expr root;
  std::vector<std::string> refs;  // the cells it names, in order of first appearance
};

// ParseFormula parses `text`. Errors (kInvalidArgument) read "syntax error at position N:
// ..." with N counted in bytes from 1.
absl::StatusOr<Formula> ParseFormula(std::string_view text);

// IsCellName tells whether `name` may name a cell: [A-Za-z_][A-Za-z0-9_]*.
bool IsCellName(std::string_view name);

// CellReader returns a referenced cell's value, or throws its error (turbine::TaskError).
using CellReader = absl::FunctionRef<int64_t(const std::string& cell)>;

// Evaluate computes `expr` for cell `cell`. It throws TaskError: a referenced cell's error
// as is, its own errors as "cell <cell>: division by zero" and the like.
int64_t Evaluate(const Expr& expr, std::string_view cell, CellReader read);

}  // namespace turbine::stdlib::sheet
