// Randomized oracle across restarts: a random task graph over random inputs, random input
// changes, and random daemon restarts in between. After every change every node equals a
// from-scratch evaluation; only nodes downstream of a changed input execute; and a restart
// with no change answers everything from disk without executing anything.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;

constexpr int kInputs = 12;
constexpr int kNodes = 60;

// Node describes one task: what it reads and how it combines the values.
struct Node {
  enum Op { kSum, kMax, kMod7, kSelect } op = kSum;
  std::vector<int> inputs;  // input indices read
  std::vector<int> nodes;   // lower-numbered nodes read (kSelect: condition, then 2 branches)
};

std::vector<Node> graph;  // fixed for the test binary; the task body looks it up
std::atomic<int> executions[kNodes];

std::string Key(int i) { return "oracle.r" + std::to_string(i); }

Task<int64_t> NodeImpl(int64_t id);
inline const turbine::Function<NodeImpl> node{"test.restart_oracle.node", 1};
Task<int64_t> NodeImpl(int64_t id) {
  executions[id].fetch_add(1);
  const Node& n = graph[id];
  if (n.op == Node::kSelect) {
    const int64_t condition = co_await node(n.nodes[0]);
    const int64_t branch = n.nodes[condition % 2 == 0 ? 1 : 2];
    co_return co_await node(branch);
  }
  std::vector<int64_t> values;
  for (int i : n.inputs) values.push_back(co_await Input<int64_t>(Key(i)));
  for (int d : n.nodes) values.push_back(co_await node(d));
  int64_t out = n.op == Node::kMax ? INT64_MIN : 0;
  for (int64_t v : values) out = n.op == Node::kMax ? std::max(out, v) : out + v;
  co_return n.op == Node::kMod7 ? out % 7 : out % 1000003;
}

int64_t Fresh(const std::vector<int64_t>& in, int id) {
  const Node& n = graph[id];
  if (n.op == Node::kSelect) {
    return Fresh(in, n.nodes[Fresh(in, n.nodes[0]) % 2 == 0 ? 1 : 2]);
  }
  int64_t out = n.op == Node::kMax ? INT64_MIN : 0;
  for (int i : n.inputs) out = n.op == Node::kMax ? std::max(out, in[i]) : out + in[i];
  for (int d : n.nodes) {
    const int64_t v = Fresh(in, d);
    out = n.op == Node::kMax ? std::max(out, v) : out + v;
  }
  return n.op == Node::kMod7 ? out % 7 : out % 1000003;
}

// Downstream: nodes that can (through any branch) read one of `changed` inputs.
std::set<int> Downstream(const std::set<int>& changed) {
  std::set<int> reach;
  for (int id = 0; id < kNodes; ++id) {
    const Node& n = graph[id];
    bool hit = false;
    for (int i : n.inputs) hit = hit || changed.contains(i);
    for (int d : n.nodes) hit = hit || reach.contains(d);
    if (hit) reach.insert(id);
  }
  return reach;
}

void MakeGraph(std::mt19937_64& random) {
  graph.assign(kNodes, Node{});
  for (int id = 0; id < kNodes; ++id) {
    Node& n = graph[id];
    if (id < 8) {
      n.op = random() % 2 ? Node::kSum : Node::kMax;
      for (int k = 0, count = 1 + random() % 3; k < count; ++k) n.inputs.push_back(random() % kInputs);
      continue;
    }
    const int choice = random() % 4;
    n.op = static_cast<Node::Op>(choice);
    const int reads = n.op == Node::kSelect ? 3 : 1 + random() % 3;
    for (int k = 0; k < reads; ++k) n.nodes.push_back(random() % id);
    if (n.op != Node::kSelect && random() % 3 == 0) n.inputs.push_back(random() % kInputs);
  }
}

TEST(RestartOracle, RandomChangesAndRestartsMatchFromScratchEvaluation) {
  const uint64_t seed = 20261122;
  std::mt19937_64 random(seed);
  MakeGraph(random);
  turbine::testing::TempDir dir;
  std::vector<int64_t> inputs(kInputs, 0);
  auto daemon = std::make_unique<turbine::testing::PersistedEngine<>>(dir.str());
  for (int i = 0; i < kInputs; ++i) ASSERT_TRUE(daemon->engine.SetInput(Key(i), int64_t{0}).ok());

  auto read_all_and_check = [&](const std::string& when) {
    for (int id = kNodes - 1; id >= 0; --id) {
      absl::StatusOr<int64_t> value = daemon->engine.Read(node(id));
      ASSERT_TRUE(value.ok()) << value.status() << " " << when;
      ASSERT_EQ(*value, Fresh(inputs, id)) << "node " << id << " " << when << " seed " << seed;
    }
  };
  read_all_and_check("initially");

  int restarts = 0;
  for (int change = 0; change < 250; ++change) {
    const std::string when = "change " + std::to_string(change);
    if (random() % 8 == 0) {  // restart: everything clean answers from disk
      daemon.reset();
      daemon = std::make_unique<turbine::testing::PersistedEngine<>>(dir.str());
      ++restarts;
      for (auto& e : executions) e = 0;
      read_all_and_check(when + " after a restart");
      for (int id = 0; id < kNodes; ++id) {
        EXPECT_EQ(executions[id].load(), 0) << "node " << id << " ran after a restart, " << when;
      }
    }
    std::set<int> changed;
    for (int k = 0, count = 1 + random() % 2; k < count; ++k) {
      const int i = random() % kInputs;
      inputs[i] = static_cast<int64_t>(random() % 9);
      changed.insert(i);
      ASSERT_TRUE(daemon->engine.SetInput(Key(i), inputs[i]).ok());
    }
    for (auto& e : executions) e = 0;
    read_all_and_check(when);
    const std::set<int> downstream = Downstream(changed);
    for (int id = 0; id < kNodes; ++id) {
      EXPECT_LE(executions[id].load(), downstream.contains(id) ? 1 : 0)
          << "node " << id << ", " << when << " seed " << seed;
    }
  }
  EXPECT_GE(restarts, 15);
}

}  // namespace
