// sheet_model.cc — random sheets and their expected results, computed from scratch.
#include "sheet_model.h"

#include <limits>
#include <sstream>
#include <utility>

namespace turbine::testing::sheet_model {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int kMissingNames = 5;

std::string CellName(int index) {
  const std::string n = std::to_string(index);
  switch (index % 4) {
    case 0:
      return "c" + n;
    case 1:
      return "v_" + n;
    case 2:
      return "Row" + n + "_x";
    default:
      return "_t" + n;
  }
}

std::string MissingName(int k) { return "missing_" + std::to_string(k); }

int Precedence(const Node& node) {
  switch (node.kind) {
    case Node::Kind::kBinary:
      return node.op == '+' || node.op == '-' ? 1 : 2;
    case Node::Kind::kNegate:
      return 3;
    default:
      return 4;
  }
}

std::vector<std::string> RefsOf(const std::map<std::string, ModelCell>& cells,
                                const std::string& name) {
  std::vector<std::string> refs;
  auto it = cells.find(name);
  if (it != cells.end() && it->second.kind == ModelCell::Kind::kFormula) {
    CollectRefs(it->second.expr, &refs);
  }
  return refs;
}

// Evaluator computes outcomes by plain recursion with a memo. A cell on a cycle is found
// by its own depth-first search before its formula is evaluated, so the recursion never
// loops: it only enters cells that are on no cycle.
class Evaluator {
 public:
  explicit Evaluator(const std::map<std::string, ModelCell>& cells) : cells_(cells) {}

  Outcome Cell(const std::string& name) {
    auto memo = memo_.find(name);
    if (memo != memo_.end()) return memo->second;
    Outcome outcome = Compute(name);
    memo_[name] = outcome;
    return outcome;
  }

 private:
  static Outcome Value(__int128 value) {
    Outcome outcome;
    outcome.ok = true;
    outcome.value = static_cast<int64_t>(value);
    return outcome;
  }
  static Outcome Failure(std::string message) {
    Outcome outcome;
    outcome.error = std::move(message);
    return outcome;
  }
  static Outcome Error(const std::string& cell, const std::string& what) {
    return Failure("cell " + cell + ": " + what);
  }
  static bool Fits(__int128 value) { return value >= kMin && value <= kMax; }

  Outcome Compute(const std::string& name) {
    auto it = cells_.find(name);
    if (it == cells_.end()) return Failure("cell " + name + " is not defined");
    const ModelCell& cell = it->second;
    switch (cell.kind) {
      case ModelCell::Kind::kNumber:
        return Value(cell.number);
      case ModelCell::Kind::kBool:
        return Error(name, "expected an integer or a formula string, got a bool");
      case ModelCell::Kind::kBadSyntax: {
        Outcome outcome = Error(name, "syntax error");
        outcome.prefix_only = true;
        return outcome;
      }
      case ModelCell::Kind::kFormula:
        break;
    }
    const std::vector<std::string> cycle = CyclePath(name);
    if (!cycle.empty()) {
      std::string text = "cycle detected: sheet cell " + name + " refers to itself (";
      for (size_t i = 0; i < cycle.size(); ++i) text += (i > 0 ? " -> " : "") + cycle[i];
      return Failure(text + ")");
    }
    return Eval(cell.expr, name);
  }

  // CyclePath: depth first from `name` through references in formula order; the stack
  // at the first way back to `name`, or empty.
  std::vector<std::string> CyclePath(const std::string& name) {
    std::vector<std::string> path{name};
    std::set<std::string> visited{name};
    return Search(name, name, &path, &visited) ? path : std::vector<std::string>{};
  }
  bool Search(const std::string& at, const std::string& target, std::vector<std::string>* path,
              std::set<std::string>* visited) {
    for (const std::string& next : RefsOf(cells_, at)) {
      if (next == target) {
        path->push_back(target);
        return true;
      }
      if (!visited->insert(next).second) continue;
      path->push_back(next);
      if (Search(next, target, path, visited)) return true;
      path->pop_back();
    }
    return false;
  }

  Outcome Eval(const Node& node, const std::string& cell) {
    switch (node.kind) {
      case Node::Kind::kNumber:
        return Value(node.number);
      case Node::Kind::kRef:
        return Cell(node.name);
      case Node::Kind::kNegate: {
        Outcome kid = Eval(node.kids[0], cell);
        if (!kid.ok) return kid;
        const __int128 result = -static_cast<__int128>(kid.value);
        if (!Fits(result))
          return Error(cell, "integer overflow in -(" + std::to_string(kid.value) + ")");
        return Value(result);
      }
      case Node::Kind::kBinary: {
        Outcome left = Eval(node.kids[0], cell);
        if (!left.ok) return left;
        Outcome right = Eval(node.kids[1], cell);
        if (!right.ok) return right;
        const __int128 a = left.value;
        const __int128 b = right.value;
        __int128 result = 0;
        switch (node.op) {
          case '+':
            result = a + b;
            break;
          case '-':
            result = a - b;
            break;
          case '*':
            result = a * b;
            break;
          case '/':
            if (b == 0) return Error(cell, "division by zero");
            result = a / b;
            break;
          case '%':
            if (b == 0) return Error(cell, "modulo by zero");
            result = a % b;
            break;
        }
        if (!Fits(result)) {
          return Error(cell, "integer overflow in " + std::to_string(left.value) + " " + node.op +
                                 " " + std::to_string(right.value));
        }
        return Value(result);
      }
      case Node::Kind::kCall: {
        std::vector<int64_t> values;
        for (const Node& kid : node.kids) {
          Outcome arg = Eval(kid, cell);
          if (!arg.ok) return arg;
          values.push_back(arg.value);
        }
        __int128 result = values[0];
        for (size_t i = 1; i < values.size(); ++i) {
          if (node.name == "min") result = std::min<__int128>(result, values[i]);
          if (node.name == "max") result = std::max<__int128>(result, values[i]);
          if (node.name == "sum") {
            result += values[i];
            if (!Fits(result)) return Error(cell, "integer overflow in sum");
          }
        }
        return Value(result);
      }
    }
    return Error(cell, "model: unknown node");
  }

  const std::map<std::string, ModelCell>& cells_;
  std::map<std::string, Outcome> memo_;
};

}  // namespace

void CollectRefs(const Node& node, std::vector<std::string>* refs) {
  if (node.kind == Node::Kind::kRef) {
    for (const std::string& seen : *refs) {
      if (seen == node.name) return;
    }
    refs->push_back(node.name);
  }
  for (const Node& kid : node.kids) CollectRefs(kid, refs);
}

void Model::Generate(int cells) {
  order_.clear();
  cells_.clear();
  for (int i = 0; i < cells; ++i) order_.push_back(CellName(i));
  for (int i = 0; i < cells; ++i) cells_[order_[i]] = RandomCell(i);
}

std::string Model::Edit() {
  if (Chance(8)) {
    const std::string missing = MissingName(Uniform(0, kMissingNames - 1));
    ModelCell cell;
    cell.number = Uniform(-9, 9);
    cells_[missing] = cell;
    return missing;
  }
  const int index = Uniform(0, static_cast<int>(order_.size()) - 1);
  cells_[order_[index]] = RandomCell(index);
  return order_[index];
}

ModelCell Model::RandomCell(int index) {
  ModelCell cell;
  const int roll = Uniform(1, 100);
  if (roll <= 20) {
    cell.kind = ModelCell::Kind::kNumber;
    cell.number = Chance(5) ? (Chance(50) ? kMin : kMax) : Uniform(-100, 100);
  } else if (roll <= 24) {
    static const char* const kBroken[] = {"1 +",    "(2", "3 4", "sum()",  "2 $ 3",
                                          "avg(1)", "",   "*1",  "1 + + ", "99999999999999999999"};
    cell.kind = ModelCell::Kind::kBadSyntax;
    cell.text = kBroken[Uniform(0, 9)];
    if (Chance(50)) cell.text = RandomRef(index) + " + " + cell.text;  // names, but broken
  } else if (roll <= 27) {
    cell.kind = ModelCell::Kind::kBool;
  } else {
    cell.kind = ModelCell::Kind::kFormula;
    cell.expr = RandomExpr(index, 0);
    cell.text = Space() + Render(cell.expr, 0, false) + Space();
  }
  return cell;
}

// RandomRef names a later cell, or now and then an earlier one (a possible cycle, the cell
// itself included) or one that does not exist.
std::string Model::RandomRef(int index) {
  const int last = static_cast<int>(order_.size()) - 1;
  if (Chance(4)) return MissingName(Uniform(0, kMissingNames - 1));
  if (Chance(4) || index == last) return order_[Uniform(0, index)];
  return order_[Uniform(index + 1, last)];
}

Node Model::RandomExpr(int index, int depth) {
  Node node;
  const bool can_refer = index + 1 < static_cast<int>(order_.size());
  if (depth >= 3 || Chance(30)) {
    if (can_refer ? Chance(60) : Chance(8)) {
      node.kind = Node::Kind::kRef;
      node.name = RandomRef(index);
    } else {
      node.kind = Node::Kind::kNumber;
      const int roll = Uniform(1, 100);
      node.number = roll <= 4 ? kMax : roll <= 8 ? (int64_t{1} << 62) : Uniform(0, 20);
    }
    return node;
  }
  const int roll = Uniform(1, 100);
  if (roll <= 15) {
    node.kind = Node::Kind::kNegate;
    node.kids.push_back(RandomExpr(index, depth + 1));
  } else if (roll <= 75) {
    node.kind = Node::Kind::kBinary;
    node.op = "+-*/%"[Uniform(0, 4)];
    node.kids.push_back(RandomExpr(index, depth + 1));
    node.kids.push_back(RandomExpr(index, depth + 1));
  } else {
    node.kind = Node::Kind::kCall;
    static const char* const kFunctions[] = {"sum", "min", "max"};
    node.name = kFunctions[Uniform(0, 2)];
    const int args = Uniform(1, 4);
    for (int i = 0; i < args; ++i) node.kids.push_back(RandomExpr(index, depth + 1));
  }
  return node;
}

std::string Model::Space() {
  static const char* const kSpaces[] = {" ", "  ", "\t", "\n"};
  return Chance(70) ? "" : kSpaces[Uniform(0, 3)];
}

// Render writes `node` with the parentheses its position needs (and a few it does not).
std::string Model::Render(const Node& node, int parent_precedence, bool right) {
  std::string text;
  switch (node.kind) {
    case Node::Kind::kNumber:
      text = std::to_string(node.number);
      break;
    case Node::Kind::kRef:
      text = node.name;
      break;
    case Node::Kind::kNegate:
      text = "-" + Space() + Render(node.kids[0], 3, false);
      break;
    case Node::Kind::kBinary: {
      const int precedence = Precedence(node);
      text = Render(node.kids[0], precedence, false) + Space() + node.op + Space() +
             Render(node.kids[1], precedence, true);
      break;
    }
    case Node::Kind::kCall:
      text = node.name + Space() + "(";
      for (size_t i = 0; i < node.kids.size(); ++i) {
        text += (i > 0 ? "," + Space() : Space()) + Render(node.kids[i], 0, false);
      }
      text += Space() + ")";
      break;
  }
  const int precedence = Precedence(node);
  const bool needed = precedence < parent_precedence ||
                      (right && precedence == parent_precedence && precedence <= 2);
  if (needed || Chance(8)) text = "(" + Space() + text + Space() + ")";
  return text;
}

std::map<std::string, Outcome> Model::Outcomes() const {
  Evaluator evaluator(cells_);
  std::map<std::string, Outcome> outcomes;
  for (const std::string& name : AllNames()) outcomes[name] = evaluator.Cell(name);
  return outcomes;
}

std::vector<std::string> Model::AllNames() const {
  std::set<std::string> names;
  for (const auto& [name, cell] : cells_) {
    names.insert(name);
    for (const std::string& ref : RefsOf(cells_, name)) names.insert(ref);
  }
  return {names.begin(), names.end()};
}

std::set<std::string> Model::Downstream(const std::string& name) const {
  std::set<std::string> reached{name};
  bool grew = true;
  while (grew) {
    grew = false;
    for (const auto& [cell, unused] : cells_) {
      if (reached.count(cell) > 0) continue;
      for (const std::string& ref : RefsOf(cells_, cell)) {
        if (reached.count(ref) > 0) {
          reached.insert(cell);
          grew = true;
          break;
        }
      }
    }
  }
  return reached;
}

std::string Model::Describe(const ModelCell& cell) {
  switch (cell.kind) {
    case ModelCell::Kind::kNumber:
      return std::to_string(cell.number);
    case ModelCell::Kind::kBool:
      return "true";
    default: {
      std::ostringstream out;
      out << '"';
      for (char c : cell.text)
        out << (c == '\n'   ? std::string("\\n")
                : c == '\t' ? std::string("\\t")
                            : std::string(1, c));
      out << '"';
      return out.str();
    }
  }
}

}  // namespace turbine::testing::sheet_model
