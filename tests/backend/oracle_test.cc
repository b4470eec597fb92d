// Oracle: a random DAG of tasks over random inputs, checked after every input change
// against an evaluator that recomputes everything from scratch.
//
// What must hold after each change:
//   - every node read through the engine has the value the from-scratch evaluation gives;
//   - no node executed that the changed inputs cannot reach (reachability over every
//     dependency a node *may* read, so a conditional counts all its branches), and none
//     executed twice;
//   - a change that sets inputs to the values they already hold executes nothing;
//   - when everything was clean before the change, exactly the nodes that early cutoff
//     cannot spare executed: those with a dependency, as read by their last execution,
//     whose value changed.
// The scenarios: one reader (RandomDag...), four readers racing between changes
// (ConcurrentReaders...), and readers racing the changes themselves (ReadsRacingChanges...),
// where only the values everything settles on and the reach of executions are checked.
//
// Failures print the seed. Another seed can be tried without recompiling:
//   TURBINE_ORACLE_SEED=1234 backend_tests --gtest_filter='Oracle*'
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/synchronization/mutex.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "turbine/engine.h"

namespace {

// --- The graph ---------------------------------------------------------------------------

enum class Kind { kSum, kMax, kMin, kMod7, kHalf, kSelect };

// Ref names one thing a node may read: an input, or a node with a lower id.
struct Ref {
  bool is_input = false;
  int index = 0;
};

struct NodeSpec {
  Kind kind = Kind::kSum;
  // kSelect reads refs[0] (the condition), then refs[1] if the condition is even and
  // refs[2] if it is odd: its dependencies change from one execution to the next.
  std::vector<Ref> refs;
};

struct Graph {
  std::vector<std::string> input_keys;
  std::vector<NodeSpec> nodes;
  // Everyone who may read each input and each node: every ref, taken branch or not.
  std::vector<std::vector<int>> input_readers;
  std::vector<std::vector<int>> node_readers;
};

// Deep sums of sums would overflow int64; the modulus keeps values small but still lets
// almost every change through, unlike kMod7 and kHalf, which often cut it off.
constexpr int64_t kSumModulus = 1'000'003;
// Inputs take few distinct values so that max, min and select often see no change.
constexpr int64_t kInputValues = 12;
// The largest graph the execution counters have room for.
constexpr int kMaxNodes = 256;

int SelectedBranch(int64_t condition) { return condition % 2 == 0 ? 1 : 2; }

int64_t Combine(Kind kind, const std::vector<int64_t>& values) {
  int64_t sum = 0;
  for (int64_t v : values) sum += v;
  switch (kind) {
    case Kind::kSum:
      return sum % kSumModulus;
    case Kind::kMax:
      return *std::max_element(values.begin(), values.end());
    case Kind::kMin:
      return *std::min_element(values.begin(), values.end());
    case Kind::kMod7:
      return sum % 7;
    case Kind::kHalf:
      return sum / 2;
    case Kind::kSelect:
      break;  // never combined: a select passes its chosen branch through
  }
  ADD_FAILURE() << "Combine called for kind " << static_cast<int>(kind);
  return -1;
}

std::string RefName(const Ref& ref) {
  return absl::StrCat(ref.is_input ? "in" : "node", ref.index);
}

std::string Describe(const Graph& graph, int id) {
  static constexpr const char* kNames[] = {"sum", "max", "min", "mod7", "half", "select"};
  const NodeSpec& spec = graph.nodes[id];
  std::vector<std::string> refs;
  for (const Ref& ref : spec.refs) refs.push_back(RefName(ref));
  return absl::StrCat("node", id, " = ", kNames[static_cast<int>(spec.kind)], "(",
                      absl::StrJoin(refs, ", "), ")");
}

// MakeGraph draws `num_nodes` nodes. The first few, and a fifth of the rest, read inputs;
// the others read nodes, half of them close by (long chains) and half anywhere below
// (wide fan-in from shared nodes).
Graph MakeGraph(std::mt19937_64& rng, int num_nodes, int num_inputs) {
  EXPECT_LE(num_nodes, kMaxNodes);
  auto uniform = [&rng](int lo, int hi) {  // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  Graph graph;
  for (int i = 0; i < num_inputs; ++i) graph.input_keys.push_back(absl::StrCat("oracle.in", i));
  graph.input_readers.resize(num_inputs);
  graph.node_readers.resize(num_nodes);
  for (int id = 0; id < num_nodes; ++id) {
    const bool reads_inputs = id < 8 || uniform(0, 4) == 0;
    auto pick = [&]() -> Ref {
      if (reads_inputs) return Ref{true, uniform(0, num_inputs - 1)};
      if (uniform(0, 1) == 0) return Ref{false, uniform(std::max(0, id - 10), id - 1)};
      return Ref{false, uniform(0, id - 1)};
    };
    NodeSpec spec;
    spec.kind = static_cast<Kind>(uniform(0, 5));
    const int count = spec.kind == Kind::kSelect ? 3 : uniform(1, reads_inputs ? 3 : 4);
    for (int i = 0; i < count; ++i) spec.refs.push_back(pick());
    for (const Ref& ref : spec.refs) {
      auto& readers = ref.is_input ? graph.input_readers[ref.index] : graph.node_readers[ref.index];
      if (readers.empty() || readers.back() != id) readers.push_back(id);
    }
    graph.nodes.push_back(std::move(spec));
  }
  return graph;
}

// --- The engine's side: one task function that evaluates any node ----------------------

// The graph the node tasks evaluate; each test points it at its own before it starts.
const Graph* g_graph = nullptr;
// Executions per node id since the last TakeExecutions().
std::array<std::atomic<int64_t>, kMaxNodes> g_executions;

turbine::Task<int64_t> NodeImpl(int64_t id);
inline const turbine::Function<NodeImpl> node{"test.oracle.node", 1};

turbine::Vc<int64_t> VcOf(const Ref& ref) {
  if (ref.is_input) return turbine::Input<int64_t>(g_graph->input_keys[ref.index]);
  return node(int64_t{ref.index});
}

turbine::Task<int64_t> NodeImpl(int64_t id) {
  g_executions[id].fetch_add(1);
  const NodeSpec& spec = g_graph->nodes[id];
  if (spec.kind == Kind::kSelect) {
    // The branch not taken is not even called, so it is truly no dependency.
    const int64_t condition = co_await VcOf(spec.refs[0]);
    co_return co_await VcOf(spec.refs[SelectedBranch(condition)]);
  }
  // Call every dependency before awaiting any, so that dependencies the engine has not
  // computed yet can run in parallel.
  std::vector<turbine::Vc<int64_t>> deps;
  for (const Ref& ref : spec.refs) deps.push_back(VcOf(ref));
  std::vector<int64_t> values;
  for (const turbine::Vc<int64_t>& dep : deps) values.push_back(co_await dep);
  co_return Combine(spec.kind, values);
}

std::vector<int64_t> TakeExecutions(const Graph& graph) {
  std::vector<int64_t> executions(graph.nodes.size());
  for (size_t id = 0; id < executions.size(); ++id) executions[id] = g_executions[id].exchange(0);
  return executions;
}

// --- The oracle: plain recursion over the same description ------------------------------

struct Evaluation {
  std::vector<int64_t> inputs;
  std::vector<int64_t> values;
  // What each node reads at these inputs, in order: the dependencies its task records.
  std::vector<std::vector<Ref>> reads;

  int64_t ValueOf(const Ref& ref) const {
    return ref.is_input ? inputs[ref.index] : values[ref.index];
  }
};

class Evaluator {
 public:
  Evaluator(const Graph& graph, const std::vector<int64_t>& inputs) : graph_(graph) {
    result_.inputs = inputs;
    result_.values.resize(graph.nodes.size());
    result_.reads.resize(graph.nodes.size());
    done_.resize(graph.nodes.size(), false);
  }

  Evaluation Run() && {
    for (size_t id = 0; id < graph_.nodes.size(); ++id) Value(static_cast<int>(id));
    return std::move(result_);
  }

 private:
  int64_t Read(int reader, const Ref& ref) {
    result_.reads[reader].push_back(ref);
    return ref.is_input ? result_.inputs[ref.index] : Value(ref.index);
  }

  int64_t Value(int id) {
    if (done_[id]) return result_.values[id];
    const NodeSpec& spec = graph_.nodes[id];
    int64_t value = 0;
    if (spec.kind == Kind::kSelect) {
      const int64_t condition = Read(id, spec.refs[0]);
      value = Read(id, spec.refs[SelectedBranch(condition)]);
    } else {
      std::vector<int64_t> values;
      for (const Ref& ref : spec.refs) values.push_back(Read(id, ref));
      value = Combine(spec.kind, values);
    }
    result_.values[id] = value;
    done_[id] = true;
    return value;
  }

  const Graph& graph_;
  Evaluation result_;
  std::vector<bool> done_;
};

Evaluation Evaluate(const Graph& graph, const std::vector<int64_t>& inputs) {
  return Evaluator(graph, inputs).Run();
}

// MarkReachable adds to `reachable` every node that may read `changed_inputs`, directly
// or through other nodes, by any branch.
void MarkReachable(const Graph& graph, const std::vector<int>& changed_inputs,
                   std::vector<bool>& reachable) {
  std::vector<int> work;
  for (int input : changed_inputs) {
    for (int reader : graph.input_readers[input]) work.push_back(reader);
  }
  while (!work.empty()) {
    const int id = work.back();
    work.pop_back();
    if (reachable[id]) continue;
    reachable[id] = true;
    for (int reader : graph.node_readers[id]) work.push_back(reader);
  }
}

// --- Driving the scenario ----------------------------------------------------------------

using Problems = std::vector<std::string>;

std::string Report(const Problems& problems) {
  constexpr size_t kShown = 12;
  std::vector<std::string> shown(problems.begin(),
                                 problems.begin() + std::min(problems.size(), kShown));
  std::string text = absl::StrJoin(shown, "\n");
  if (problems.size() > kShown) {
    absl::StrAppend(&text, "\n... and ", problems.size() - kShown, " more");
  }
  return text;
}

uint64_t Seed(uint64_t fallback) {
  const char* text = std::getenv("TURBINE_ORACLE_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : fallback;
}

std::vector<int64_t> RandomInputs(std::mt19937_64& rng, int count) {
  std::vector<int64_t> inputs(count);
  for (int64_t& v : inputs) v = std::uniform_int_distribution<int64_t>(0, kInputValues - 1)(rng);
  return inputs;
}

std::vector<turbine::InputValue> AllInputs(const Graph& graph, const std::vector<int64_t>& inputs) {
  std::vector<turbine::InputValue> values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    values.push_back(turbine::InputValue::Of(graph.input_keys[i], inputs[i]));
  }
  return values;
}

// Change is one atomic SetInputs batch of 1-3 distinct inputs.
struct Change {
  std::vector<int> keys;
  std::vector<int64_t> values;
  bool no_op = false;        // drawn as "set everything to what it already is"
  std::vector<int> changed;  // inputs whose value really differs afterwards
};

Change RandomChange(std::mt19937_64& rng, const std::vector<int64_t>& inputs) {
  std::uniform_int_distribution<int> percent(0, 99);
  Change change;
  change.no_op = percent(rng) < 10;
  std::vector<int> all(inputs.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::shuffle(all.begin(), all.end(), rng);
  const int count = std::uniform_int_distribution<int>(1, 3)(rng);
  for (int i = 0; i < count; ++i) {
    const int key = all[i];
    // Even a real change sometimes rewrites one input with its own value.
    const bool same = change.no_op || percent(rng) < 20;
    const int64_t value =
        same ? inputs[key] : std::uniform_int_distribution<int64_t>(0, kInputValues - 1)(rng);
    change.keys.push_back(key);
    change.values.push_back(value);
    if (value != inputs[key]) change.changed.push_back(key);
  }
  return change;
}

void Apply(turbine::Engine& engine, const Graph& graph, const Change& change,
           std::vector<int64_t>& inputs) {
  std::vector<turbine::InputValue> batch;
  for (size_t i = 0; i < change.keys.size(); ++i) {
    batch.push_back(turbine::InputValue::Of(graph.input_keys[change.keys[i]], change.values[i]));
    inputs[change.keys[i]] = change.values[i];
  }
  ASSERT_TRUE(engine.SetInputs(std::move(batch)).ok());
}

std::string ChangeText(const Graph& graph, const Change& change) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < change.keys.size(); ++i) {
    parts.push_back(absl::StrCat(graph.input_keys[change.keys[i]], "=", change.values[i]));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}", change.no_op ? " (no-op)" : "");
}

std::vector<int> Shuffled(std::mt19937_64& rng, int count) {
  std::vector<int> ids(count);
  for (int i = 0; i < count; ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  return ids;
}

// ReadAndCompare reads `ids` through the engine, in that order, and checks each value.
Problems ReadAndCompare(turbine::Engine& engine, const Graph& graph, const std::vector<int>& ids,
                        const Evaluation& expected) {
  Problems problems;
  for (int id : ids) {
    absl::StatusOr<int64_t> got = engine.Read(node(int64_t{id}));
    if (!got.ok()) {
      problems.push_back(
          absl::StrCat(Describe(graph, id), ": read failed: ", got.status().ToString()));
    } else if (*got != expected.values[id]) {
      problems.push_back(absl::StrCat(Describe(graph, id), ": engine says ", *got,
                                      ", from scratch ", expected.values[id]));
    }
  }
  return problems;
}

// CheckExecutionsReachable: a node executed only if it is in `reachable` (what the inputs
// changed since everything was last clean can reach), and at most `at_most` times.
Problems CheckExecutionsReachable(const Graph& graph, const std::vector<int64_t>& executions,
                                  const std::vector<bool>& reachable, int64_t at_most) {
  Problems problems;
  for (size_t id = 0; id < executions.size(); ++id) {
    if (executions[id] > at_most || (executions[id] > 0 && !reachable[id])) {
      problems.push_back(absl::StrCat(
          Describe(graph, static_cast<int>(id)), ": executed ", executions[id], " times but ",
          reachable[id] ? absl::StrCat("at most ", at_most, " is possible")
                        : "no changed input can reach it"));
    }
  }
  return problems;
}

// CheckExecutionsExact, for a change made while every node was clean and followed by a
// read of every node: a node must execute exactly when one of the dependencies its last
// execution read (before.reads) now has a different value. Anything more is a missed
// early cutoff; anything less means a stale value was kept.
Problems CheckExecutionsExact(const Graph& graph, const std::vector<int64_t>& executions,
                              const Evaluation& before, const Evaluation& after) {
  Problems problems;
  for (size_t id = 0; id < executions.size(); ++id) {
    bool must_execute = false;
    std::vector<std::string> reads;
    for (const Ref& ref : before.reads[id]) {
      const int64_t was = before.ValueOf(ref), now = after.ValueOf(ref);
      must_execute = must_execute || was != now;
      reads.push_back(absl::StrCat(RefName(ref), ":", was, "->", now));
    }
    if (executions[id] != (must_execute ? 1 : 0)) {
      problems.push_back(absl::StrCat(Describe(graph, static_cast<int>(id)), ": executed ",
                                      executions[id], " times, expected ", must_execute ? 1 : 0,
                                      " (its reads: ", absl::StrJoin(reads, ", "), ")"));
    }
  }
  return problems;
}

uint64_t NodeExecutionsInStats(const turbine::Engine& engine) {
  for (const turbine::FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == "test.oracle.node") return fn.executions;
  }
  return 0;
}

// --- The scenarios -----------------------------------------------------------------------

// 200 nodes over 30 inputs; 2000 changes. After each change the test reads either every
// node (half the rounds), only the roots, or 20 random nodes, so that dirty nodes
// sometimes stay unread across several changes before a later read brings them up to date.
TEST(Oracle, RandomDagMatchesFromScratchEvaluationAfterEveryChange) {
  constexpr int kNodes = 200, kInputs = 30, kChanges = 2000, kPartialReads = 20;
  const uint64_t seed = Seed(0x7075726269'6e65);
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (rerun with TURBINE_ORACLE_SEED=", seed, ")"));
  std::mt19937_64 rng(seed);
  const Graph graph = MakeGraph(rng, kNodes, kInputs);
  g_graph = &graph;
  std::vector<int> roots;
  for (int id = 0; id < kNodes; ++id) {
    if (graph.node_readers[id].empty()) roots.push_back(id);
  }

  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  std::vector<int64_t> inputs = RandomInputs(rng, kInputs);
  ASSERT_TRUE(engine.SetInputs(AllInputs(graph, inputs)).ok());
  Evaluation before = Evaluate(graph, inputs);

  // The first read of everything executes every node exactly once.
  TakeExecutions(graph);
  Problems problems = ReadAndCompare(engine, graph, Shuffled(rng, kNodes), before);
  ASSERT_TRUE(problems.empty()) << "initial read:\n" << Report(problems);
  for (int64_t executions : TakeExecutions(graph)) ASSERT_EQ(executions, 1);
  uint64_t total_executions = kNodes;
  ASSERT_EQ(NodeExecutionsInStats(engine), total_executions);

  // Nodes that may be dirty: reachable from an input changed since the last full read.
  std::vector<bool> maybe_dirty(kNodes, false);
  bool all_clean = true;
  int exact_rounds = 0, no_op_rounds = 0;
  for (int round = 1; round <= kChanges; ++round) {
    const Change change = RandomChange(rng, inputs);
    SCOPED_TRACE(absl::StrCat("round ", round, ", change ", ChangeText(graph, change)));
    const bool was_all_clean = all_clean;
    Apply(engine, graph, change, inputs);
    MarkReachable(graph, change.changed, maybe_dirty);
    const Evaluation after = Evaluate(graph, inputs);

    const int mode = std::uniform_int_distribution<int>(0, 3)(rng);
    std::vector<int> ids;
    if (mode <= 1) {
      ids = Shuffled(rng, kNodes);
    } else if (mode == 2) {
      ids = roots;
    } else {
      ids = Shuffled(rng, kNodes);
      ids.resize(kPartialReads);
    }
    const bool read_everything = ids.size() == static_cast<size_t>(kNodes);

    problems = ReadAndCompare(engine, graph, ids, after);
    ASSERT_TRUE(problems.empty()) << "wrong values:\n" << Report(problems);

    const std::vector<int64_t> executions = TakeExecutions(graph);
    int64_t executed = 0;
    for (int64_t n : executions) executed += n;
    if (change.no_op && was_all_clean) {
      ++no_op_rounds;
      ASSERT_EQ(executed, 0) << "setting inputs to their current values executed nodes";
    }
    problems = CheckExecutionsReachable(graph, executions, maybe_dirty, /*at_most=*/1);
    ASSERT_TRUE(problems.empty()) << "executions outside the changed inputs' reach:\n"
                                  << Report(problems);
    if (read_everything && was_all_clean) {
      ++exact_rounds;
      problems = CheckExecutionsExact(graph, executions, before, after);
      ASSERT_TRUE(problems.empty()) << "executions differ from what early cutoff allows:\n"
                                    << Report(problems);
    }
    total_executions += static_cast<uint64_t>(executed);
    ASSERT_EQ(NodeExecutionsInStats(engine), total_executions)
        << "Engine::Stats disagrees with the bodies' own count";

    if (read_everything) {
      maybe_dirty.assign(kNodes, false);
      all_clean = true;
    } else {
      all_clean = false;
    }
    before = after;
  }
  // The scenario is only as good as the situations it reached.
  EXPECT_GT(exact_rounds, kChanges / 5);
  EXPECT_GT(no_op_rounds, kChanges / 40);
  g_graph = nullptr;
}

// 100 nodes over 16 inputs; 300 changes. Between changes, four threads read every node
// concurrently, each in its own order, so they race to refresh the same dirty nodes.
TEST(Oracle, ConcurrentReadersAgreeWithFromScratchEvaluation) {
  constexpr int kNodes = 100, kInputs = 16, kChanges = 300, kReaders = 4;
  const uint64_t seed = Seed(0x636f6e63'757272);
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (rerun with TURBINE_ORACLE_SEED=", seed, ")"));
  std::mt19937_64 rng(seed);
  const Graph graph = MakeGraph(rng, kNodes, kInputs);
  g_graph = &graph;

  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  std::vector<int64_t> inputs = RandomInputs(rng, kInputs);
  ASSERT_TRUE(engine.SetInputs(AllInputs(graph, inputs)).ok());
  Evaluation before = Evaluate(graph, inputs);
  TakeExecutions(graph);

  // ReadConcurrently has every reader read every node and returns what went wrong.
  auto read_concurrently = [&](const Evaluation& expected) {
    std::vector<std::vector<int>> orders;
    for (int r = 0; r < kReaders; ++r) orders.push_back(Shuffled(rng, kNodes));
    absl::Mutex mu;
    Problems problems;
    std::vector<std::thread> readers;
    for (int r = 0; r < kReaders; ++r) {
      readers.emplace_back([&, r] {
        turbine::Engine::Scope scope(engine);
        Problems mine = ReadAndCompare(engine, graph, orders[r], expected);
        absl::MutexLock lock(&mu);
        for (std::string& p : mine) problems.push_back(absl::StrCat("reader ", r, ": ", p));
      });
    }
    for (std::thread& reader : readers) reader.join();
    return problems;
  };

  Problems problems = read_concurrently(before);
  ASSERT_TRUE(problems.empty()) << "initial read:\n" << Report(problems);
  for (int64_t executions : TakeExecutions(graph)) ASSERT_EQ(executions, 1);

  for (int round = 1; round <= kChanges; ++round) {
    const Change change = RandomChange(rng, inputs);
    SCOPED_TRACE(absl::StrCat("round ", round, ", change ", ChangeText(graph, change)));
    Apply(engine, graph, change, inputs);
    const Evaluation after = Evaluate(graph, inputs);
    problems = read_concurrently(after);
    ASSERT_TRUE(problems.empty()) << "wrong values:\n" << Report(problems);

    // Racing readers share one refresh per dirty node: the counts are the same as with
    // one reader.
    const std::vector<int64_t> executions = TakeExecutions(graph);
    std::vector<bool> reachable(kNodes, false);
    MarkReachable(graph, change.changed, reachable);
    problems = CheckExecutionsReachable(graph, executions, reachable, /*at_most=*/1);
    ASSERT_TRUE(problems.empty()) << "executions outside the changed inputs' reach:\n"
                                  << Report(problems);
    problems = CheckExecutionsExact(graph, executions, before, after);
    ASSERT_TRUE(problems.empty()) << "executions differ from what early cutoff allows:\n"
                                  << Report(problems);
    before = after;
  }
  g_graph = nullptr;
}

// 100 nodes over 16 inputs; 150 rounds of 4 changes each. Two threads keep reading random
// nodes *while* the inputs change, so refreshes overlap invalidation. What they read in
// flight is not checked; once the changes stop and the readers are gone, every node must
// settle on the from-scratch value for the final inputs.
TEST(Oracle, ReadsRacingChangesSettleOnFromScratchEvaluation) {
  constexpr int kNodes = 100, kInputs = 16, kRounds = 150, kChangesPerRound = 4;
  constexpr int kReaders = 2;
  const uint64_t seed = Seed(0x72616365);
  SCOPED_TRACE(absl::StrCat("seed ", seed, " (rerun with TURBINE_ORACLE_SEED=", seed, ")"));
  std::mt19937_64 rng(seed);
  const Graph graph = MakeGraph(rng, kNodes, kInputs);
  g_graph = &graph;

  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  std::vector<int64_t> inputs = RandomInputs(rng, kInputs);
  ASSERT_TRUE(engine.SetInputs(AllInputs(graph, inputs)).ok());
  Problems problems = ReadAndCompare(engine, graph, Shuffled(rng, kNodes), Evaluate(graph, inputs));
  ASSERT_TRUE(problems.empty()) << "initial read:\n" << Report(problems);
  TakeExecutions(graph);

  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::atomic<bool> stop{false};
    absl::Mutex mu;
    Problems read_errors;
    std::vector<std::thread> readers;
    for (int r = 0; r < kReaders; ++r) {
      readers.emplace_back([&, reader_seed = rng()] {
        turbine::Engine::Scope reader_scope(engine);
        std::mt19937_64 reader_rng(reader_seed);
        std::uniform_int_distribution<int> pick(0, kNodes - 1);
        while (!stop.load()) {
          const int id = pick(reader_rng);
          absl::StatusOr<int64_t> got = engine.Read(node(int64_t{id}));
          if (!got.ok()) {
            absl::MutexLock lock(&mu);
            read_errors.push_back(
                absl::StrCat(Describe(graph, id), ": read failed: ", got.status().ToString()));
          }
        }
      });
    }
    std::vector<int> changed;
    std::vector<std::string> changes;
    for (int c = 0; c < kChangesPerRound; ++c) {
      const Change change = RandomChange(rng, inputs);
      Apply(engine, graph, change, inputs);
      changed.insert(changed.end(), change.changed.begin(), change.changed.end());
      changes.push_back(ChangeText(graph, change));
      std::this_thread::yield();  // let the readers start refreshes between changes
    }
    stop.store(true);
    for (std::thread& reader : readers) reader.join();
    SCOPED_TRACE(absl::StrCat("changes ", absl::StrJoin(changes, " ")));
    ASSERT_TRUE(read_errors.empty()) << Report(read_errors);

    problems = ReadAndCompare(engine, graph, Shuffled(rng, kNodes), Evaluate(graph, inputs));
    ASSERT_TRUE(problems.empty()) << "wrong values after the changes settled:\n"
                                  << Report(problems);
    // How often a node executes is up to the race (an invalidation that reaches a running
    // node makes it run again), but only nodes this round's changes can reach may run.
    std::vector<bool> reachable(kNodes, false);
    MarkReachable(graph, changed, reachable);
    problems = CheckExecutionsReachable(graph, TakeExecutions(graph), reachable,
                                        /*at_most=*/std::numeric_limits<int64_t>::max());
    ASSERT_TRUE(problems.empty()) << "executions outside the changed inputs' reach:\n"
                                  << Report(problems);
  }
  g_graph = nullptr;
}

}  // namespace
