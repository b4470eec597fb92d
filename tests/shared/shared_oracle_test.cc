// Randomized oracle across machines: two engines, each on its own RocksDB directory, share
// one namespace of the real Redis Cluster (the `redis_cluster` fixture). A random task graph
// over random inputs, including tasks that take task references as arguments and tasks
// that answer with a reference to another task; random input edits on either side; now and
// then one side replaced by a new machine (an empty directory: every task it reads is new
// to it, so it asks the shared tier first) or restarted on its own directory. After every
// step every node read on both sides equals a from-scratch evaluation of that side's
// inputs, and the shared tier was used (adopted traces) and also refused (traces whose
// dependencies differ here).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../backend/read_now.h"
#include "../storage/temp_dir.h"
#include "redis_test_env.h"
#include "turbine/engine.h"
#include "turbine/shared/redis_tier.h"
#include "turbine/storage/persistent_engine.h"

namespace turbine::testing {
namespace {

using turbine::shared::RedisOptions;
using turbine::shared::RedisTier;

constexpr int kInputs = 10;
constexpr int kNodes = 40;
constexpr int kSteps = 60;

// Node describes one task: what it reads and how it combines the values.
struct Node {
  // kRelay reads relay(node(d)): a task whose argument is a task reference. kForward reads
  // forward(d): a task whose output is a reference to node(d).
  enum Op { kSum, kMax, kMod7, kSelect, kRelay, kForward } op = kSum;
  std::vector<int> inputs;
  std::vector<int> nodes;  // lower-numbered nodes (kSelect: condition, then 2 branches)
};

std::vector<Node> graph;  // the same program on every machine

std::string Key(int i) { return "shared_oracle.x" + std::to_string(i); }

Task<int64_t> NodeImpl(int64_t id);
inline const Function<NodeImpl> node{"shared_oracle.node", 1};
Task<int64_t> RelayImpl(Vc<int64_t> inner) { co_return (co_await inner) * 3 % 1000003; }
inline const Function<RelayImpl> relay{"shared_oracle.relay", 1};
Task<Vc<int64_t>> ForwardImpl(int64_t id) { co_return node(id); }
inline const Function<ForwardImpl> forward{"shared_oracle.forward", 1};

Task<int64_t> NodeImpl(int64_t id) {
  const Node& n = graph[id];
  if (n.op == Node::kRelay) co_return (co_await relay(node(n.nodes[0]))) + 1;
  if (n.op == Node::kForward) co_return (co_await forward(n.nodes[0])) + 2;
  if (n.op == Node::kSelect) {
    const int64_t condition = co_await node(n.nodes[0]);
    co_return co_await node(n.nodes[condition % 2 == 0 ? 1 : 2]);
  }
  int64_t out = n.op == Node::kMax ? INT64_MIN : 0;
  auto combine = [&](int64_t v) { out = n.op == Node::kMax ? std::max(out, v) : out + v; };
  for (int i : n.inputs) combine(co_await Input<int64_t>(Key(i)));
  for (int d : n.nodes) combine(co_await node(d));
  co_return n.op == Node::kMod7 ? out % 7 : out % 1000003;
}

int64_t Fresh(const std::vector<int64_t>& in, int id) {
  const Node& n = graph[id];
  if (n.op == Node::kRelay) return Fresh(in, n.nodes[0]) * 3 % 1000003 + 1;
  if (n.op == Node::kForward) return Fresh(in, n.nodes[0]) + 2;
  if (n.op == Node::kSelect) return Fresh(in, n.nodes[Fresh(in, n.nodes[0]) % 2 == 0 ? 1 : 2]);
  int64_t out = n.op == Node::kMax ? INT64_MIN : 0;
  auto combine = [&](int64_t v) { out = n.op == Node::kMax ? std::max(out, v) : out + v; };
  for (int i : n.inputs) combine(in[i]);
  for (int d : n.nodes) combine(Fresh(in, d));
  return n.op == Node::kMod7 ? out % 7 : out % 1000003;
}

void MakeGraph(std::mt19937_64& random) {
  graph.assign(kNodes, Node{});
  for (int id = 0; id < kNodes; ++id) {
    Node& n = graph[id];
    if (id < 6) {
      n.op = random() % 2 ? Node::kSum : Node::kMax;
      for (int k = 0, count = 1 + random() % 3; k < count; ++k)
        n.inputs.push_back(random() % kInputs);
      continue;
    }
    n.op = static_cast<Node::Op>(random() % 6);
    const int reads = n.op == Node::kSelect                            ? 3
                      : n.op == Node::kRelay || n.op == Node::kForward ? 1
                                                                       : 1 + random() % 3;
    for (int k = 0; k < reads; ++k) n.nodes.push_back(random() % id);
    if (n.op < Node::kSelect && random() % 3 == 0) n.inputs.push_back(random() % kInputs);
  }
}

// Side is one machine: an engine on its own data directory, with its inputs.
struct Side {
  Side(std::shared_ptr<RedisTier> tier, const std::string& name_space)
      : tier(std::move(tier)), name_space(name_space), inputs(kInputs, 0) {}

  // Open starts the machine on `dir` (a new one: an empty directory) and sets its inputs.
  void Open() {
    auto opened = storage::PersistentEngine::Open(
        storage::StoreOptions{.data_dir = dir->str()},
        EngineOptions{.worker_threads = 2,
                      .gc = {.interval = {}},
                      .shared = {.tier = tier, .name_space = name_space, .publish = true}});
    ASSERT_TRUE(opened.ok()) << opened.status();
    owner = std::move(*opened);
    std::vector<InputValue> values;
    for (int i = 0; i < kInputs; ++i) values.push_back(InputValue::Of(Key(i), inputs[i]));
    ASSERT_TRUE(owner->engine().SetInputs(std::move(values)).ok());
  }
  // Close adds up the machine's counters and stops it.
  void Close() {
    if (owner == nullptr) return;
    WaitPublished();
    const EngineStats stats = owner->engine().Stats();
    adopted += stats.shared_hits;
    refused += stats.shared_verify_failures;
    owner.reset();
  }
  void Replace() {
    Close();
    dir = std::make_unique<TempDir>();
    Open();
  }
  void Restart() {
    Close();
    Open();
  }
  // WaitPublished waits until nothing waits to be published, so the other side sees it.
  void WaitPublished() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (owner->engine().Stats().shared_publish_queue != 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "publishing never finished";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  int64_t Read(int id) {
    Engine& engine = owner->engine();
    RawVc vc;
    {
      Engine::Scope scope(engine);
      vc = node(id).raw();
    }
    Engine::AsyncRead read = ReadNow(engine, vc);
    EXPECT_TRUE(read.status.ok()) << read.status;
    return read.status.ok() ? *static_cast<const int64_t*>(read.value.get()) : -1;
  }

  std::shared_ptr<RedisTier> tier;
  std::string name_space;
  std::vector<int64_t> inputs;
  std::unique_ptr<TempDir> dir = std::make_unique<TempDir>();
  std::unique_ptr<storage::PersistentEngine> owner;
  uint64_t adopted = 0;
  uint64_t refused = 0;
};

TEST(SharedOracle, TwoMachinesWithRandomEditsMatchFromScratchEvaluation) {
  const std::vector<std::string> seeds = SplitSeeds(ClusterSeeds());
  ASSERT_FALSE(seeds.empty()) << "the redis_cluster fixture did not run";
  const uint64_t seed = 20261202;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  MakeGraph(random);
  auto uses = [](Node::Op op) {
    return std::count_if(graph.begin(), graph.end(), [op](const Node& n) { return n.op == op; });
  };
  ASSERT_GT(uses(Node::kRelay), 0);    // task-reference arguments are exercised
  ASSERT_GT(uses(Node::kForward), 0);  // and outputs that refer to another task
  auto tier = RedisTier::Connect(RedisOptions{.seeds = seeds});
  ASSERT_TRUE(tier.ok()) << tier.status();
  const std::string name_space =
      "oracle-" + std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  Side sides[2] = {Side(*tier, name_space), Side(*tier, name_space)};
  for (Side& side : sides) side.Open();

  auto check = [&](const std::string& when) {
    for (int s = 0; s < 2; ++s) {
      for (int id = kNodes - 1; id >= 0; --id) {
        ASSERT_EQ(sides[s].Read(id), Fresh(sides[s].inputs, id))
            << "side " << s << ", node " << id << ", " << when;
      }
      sides[s].WaitPublished();
    }
  };
  check("initially");
  // Side 1 has side 0's inputs: it adopted every node, relay and forward, executing none.
  for (const FunctionStats& fn : sides[1].owner->engine().Stats().functions) {
    if (fn.name.starts_with("shared_oracle.")) {
      EXPECT_EQ(fn.executions, 0u) << fn.name;
    }
  }
  EXPECT_GE(sides[1].owner->engine().Stats().shared_hits, uint64_t{kNodes});
  int replaced = 0;
  for (int step = 0; step < kSteps; ++step) {
    const std::string when = "step " + std::to_string(step);
    Side& side = sides[random() % 2];
    std::vector<InputValue> edits;
    for (int k = 0, count = 1 + random() % 2; k < count; ++k) {
      const int i = random() % kInputs;
      side.inputs[i] = static_cast<int64_t>(random() % 5);
      edits.push_back(InputValue::Of(Key(i), side.inputs[i]));
    }
    ASSERT_TRUE(side.owner->engine().SetInputs(std::move(edits)).ok());
    const int event = random() % 6;
    if (event == 0 || event == 1) {
      sides[random() % 2].Replace();  // a new machine: everything it reads asks the tier
      ++replaced;
    } else if (event == 2) {
      sides[random() % 2].Restart();
    }
    check(when);
  }
  for (Side& side : sides) side.Close();
  EXPECT_GE(replaced, 10);
  uint64_t adopted = sides[0].adopted + sides[1].adopted;
  uint64_t refused = sides[0].refused + sides[1].refused;
  EXPECT_GT(adopted, 100u) << "the shared tier was hardly used";
  EXPECT_GT(refused, 0u) << "no trace was ever refused: the edits never reached the tier";
  std::printf("shared oracle: %llu adopted, %llu refused, %d machines replaced\n",
              static_cast<unsigned long long>(adopted), static_cast<unsigned long long>(refused),
              replaced);
}

}  // namespace
}  // namespace turbine::testing
