// sheet_model.h — the randomized oracle's side: random sheets kept as expression trees,
// rendered to formula text, and evaluated from scratch by a plain recursive evaluator with
// a memo and its own cycle search. Nothing here shares code with server/stdlib/sheet*.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace turbine::testing::sheet_model {

struct Node {
  enum class Kind { kNumber, kRef, kNegate, kBinary, kCall };
  Kind kind = Kind::kNumber;
  int64_t number = 0;  // >= 0: a negative literal is kNegate of one
  std::string name;    // kRef: the cell; kCall: sum, min or max
  char op = '+';       // kBinary
  std::vector<Node> kids;
};

// ModelCell is what one input holds.
struct ModelCell {
  enum class Kind { kNumber, kFormula, kBadSyntax, kBool };
  Kind kind = Kind::kNumber;
  int64_t number = 0;
  Node expr;         // kFormula
  std::string text;  // kFormula and kBadSyntax: what is sent
};

// Outcome is a cell's expected result. A syntax error's exact wording is the
// implementation's business: only "cell X: syntax error" is expected (prefix).
struct Outcome {
  bool ok = false;
  int64_t value = 0;
  std::string error;
  bool prefix_only = false;
};

class Model {
 public:
  explicit Model(uint64_t seed) : rng_(seed) {}

  // Generate makes a sheet of `cells` cells. Cell i mostly names cells after it (acyclic),
  // now and then one before it (perhaps a cycle) or one that does not exist.
  void Generate(int cells);
  // Edit changes one random cell (or defines a missing one); returns its name.
  std::string Edit();

  // Outcomes evaluates every name from scratch: the cells and the missing names.
  std::map<std::string, Outcome> Outcomes() const;
  // Downstream lists `name` and every name whose formula reaches it.
  std::set<std::string> Downstream(const std::string& name) const;

  const std::map<std::string, ModelCell>& cells() const { return cells_; }
  // AllNames lists the cells and the missing names formulas refer to.
  std::vector<std::string> AllNames() const;
  static std::string Describe(const ModelCell& cell);

 private:
  ModelCell RandomCell(int index);
  Node RandomExpr(int index, int depth);
  std::string RandomRef(int index);
  std::string Render(const Node& node, int parent_precedence, bool right);
  std::string Space();
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(int percent) { return Uniform(1, 100) <= percent; }

  std::mt19937_64 rng_;
  std::vector<std::string> order_;  // cell names by index
  std::map<std::string, ModelCell> cells_;
};

// Refs lists the names `node` refers to, in order of first appearance.
void CollectRefs(const Node& node, std::vector<std::string>* refs);

}  // namespace turbine::testing::sheet_model
