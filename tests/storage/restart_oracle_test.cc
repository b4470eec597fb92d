// Randomized oracle across restarts: a random task graph over random inputs, random input
// changes (an input is sometimes unset: its readers fail until it is set again), random
// daemon restarts and random garbage collection passes in between. A third
// of the inputs are values of the outside world instead, read by a session-dependent task
// that observes them (turbine/observe.h): changed in a session as a watched file changes
// (the subscriptions fire), or while no daemon runs. After
// every change every node equals a from-scratch evaluation; only nodes downstream of a
// changed input execute; and a restart answers everything from disk without executing
// anything but what read an input changed just before it, or what garbage collection
// removed and what read it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/observe.h"

namespace {

using turbine::Input;
using turbine::Task;

constexpr int kInputs = 12;
constexpr int kNodes = 60;

// Node describes one task: what it reads and how it combines the values.
struct Node {
  enum Op { kSum, kMax, kMod7, kSelect, kForward } op = kSum;
  std::vector<int> inputs;  // input indices read
  // Lower-numbered nodes read (kSelect: condition, then 2 branches; kForward: one, read
  // through Forward, which refers to it without reading it).
  std::vector<int> nodes;
};

std::vector<Node> graph;  // fixed for the test binary; the task body looks it up
std::atomic<int> executions[kNodes];

std::string Key(int i) { return "oracle.r" + std::to_string(i); }
// An engine input with this value is not set: reading it fails.
constexpr int64_t kUnset = -1;

// Inputs from kWorldFrom on live in the outside world, with their subscriptions.
constexpr int kWorldFrom = 8;
std::mutex world_mu;
int64_t world[kInputs];
std::vector<turbine::Invalidator> watchers[kInputs];
int64_t LookAtWorld(int i, const turbine::Invalidator& invalidator) {
  std::lock_guard lock(world_mu);
  watchers[i].push_back(invalidator);  // subscribe, then look
  return world[i];
}
void WatchWorld(const std::string& subject, const turbine::Invalidator& invalidator) {
  std::lock_guard lock(world_mu);
  watchers[std::stoi(subject)].push_back(invalidator);
}
std::optional<uint64_t> LookWorld(const std::string& subject, const turbine::Invalidator&) {
  std::lock_guard lock(world_mu);
  return static_cast<uint64_t>(world[std::stoi(subject)]);
}
const turbine::ObservationKind world_kind{"test.restart_oracle.world", WatchWorld, LookWorld};
Task<int64_t> WorldImpl(int64_t i) {
  const int64_t value = LookAtWorld(static_cast<int>(i), turbine::CurrentInvalidator());
  turbine::Observe("test.restart_oracle.world", std::to_string(i), static_cast<uint64_t>(value));
  co_return value;
}
inline const turbine::Function<WorldImpl> world_value{
    "test.restart_oracle.world", 1, "a value of the outside world", {.session_dependent = true}};

// Source is input i: an engine input, or a value of the world.
turbine::Vc<int64_t> Source(int i) {
  return i < kWorldFrom ? Input<int64_t>(Key(i)) : world_value(i);
}
// SetSource changes input i; a world value changes as a watched file does (its
// subscriptions fire), or, with no engine, while no daemon runs.
absl::Status SetSource(turbine::Engine* engine, int i, int64_t value) {
  if (i < kWorldFrom && value == kUnset) return engine->DeleteInputs({Key(i)});
  if (i < kWorldFrom) return engine->SetInput(Key(i), value);
  std::vector<turbine::Invalidator> fired;
  {
    std::lock_guard lock(world_mu);
    world[i] = value;
    fired = std::exchange(watchers[i], {});
  }
  if (engine != nullptr) turbine::Invalidator::InvalidateAll(fired);
  return absl::OkStatus();
}

// A node's value: boxed on the heap, as a large result is (an int64 result is held in its
// task's record, where no eviction takes it), so that the eviction modes evict every node's.
struct Boxed {
  int64_t v = 0;
  std::string unused;  // not trivially copyable
  bool operator==(const Boxed&) const = default;
  static constexpr std::string_view kTypeName = "test.restart_oracle.Boxed";
  static constexpr auto kFields =
      std::make_tuple(turbine::field("v", &Boxed::v), turbine::field("unused", &Boxed::unused));
};

Task<Boxed> NodeImpl(int64_t id);
inline const turbine::Function<NodeImpl> node{"test.restart_oracle.node", 1};
// Forward(id) refers to Node(id) without reading it. It reads an input it does not use, so
// that it is written again now and then, referring to a task collected meanwhile.
Task<turbine::Vc<Boxed>> ForwardImpl(int64_t id) {
  (void)co_await Source(static_cast<int>(id % kInputs));
  co_return node(id);
}
inline const turbine::Function<ForwardImpl> forward{"test.restart_oracle.forward", 1};
Task<Boxed> NodeImpl(int64_t id) {
  executions[id].fetch_add(1);
  const Node& n = graph[id];
  // Each awaited value bound to a local first (GCC 12 and temporaries around co_await).
  if (n.op == Node::kForward) {
    const Boxed forwarded = co_await forward(n.nodes[0]);
    co_return Boxed{forwarded.v + 1, {}};
  }
  if (n.op == Node::kSelect) {
    const Boxed condition = co_await node(n.nodes[0]);
    const int64_t branch = n.nodes[condition.v % 2 == 0 ? 1 : 2];
    Boxed chosen = co_await node(branch);
    co_return chosen;
  }
  std::vector<int64_t> values;
  for (int i : n.inputs) values.push_back(co_await Source(i));
  for (int d : n.nodes) {
    const Boxed read = co_await node(d);
    values.push_back(read.v);
  }
  int64_t out = n.op == Node::kMax ? INT64_MIN : 0;
  for (int64_t v : values) out = n.op == Node::kMax ? std::max(out, v) : out + v;
  co_return Boxed{n.op == Node::kMod7 ? out % 7 : out % 1000003, {}};
}

// Fresh is node `id` computed from scratch; nullopt where it fails (it reads an input that
// is not set).
std::optional<int64_t> Fresh(const std::vector<int64_t>& in, int id) {
  const Node& n = graph[id];
  const auto source = [&](int i) {
    return in[i] == kUnset ? std::nullopt : std::optional<int64_t>(in[i]);
  };
  if (n.op == Node::kForward) {
    // Forward reads an input it does not use: unset, it fails.
    if (!source(n.nodes[0] % kInputs)) return std::nullopt;
    std::optional<int64_t> target = Fresh(in, n.nodes[0]);
    return target ? std::optional<int64_t>(*target + 1) : std::nullopt;
  }
  if (n.op == Node::kSelect) {
    std::optional<int64_t> condition = Fresh(in, n.nodes[0]);
    if (!condition) return std::nullopt;
    return Fresh(in, n.nodes[*condition % 2 == 0 ? 1 : 2]);
  }
  int64_t out = n.op == Node::kMax ? INT64_MIN : 0;
  const auto add = [&](std::optional<int64_t> v) {
    if (v) out = n.op == Node::kMax ? std::max(out, *v) : out + *v;
    return v.has_value();
  };
  for (int i : n.inputs) {
    if (!add(source(i))) return std::nullopt;
  }
  for (int d : n.nodes) {
    if (!add(Fresh(in, d))) return std::nullopt;
  }
  return n.op == Node::kMod7 ? out % 7 : out % 1000003;
}

// Downstream: nodes that can (through any branch) read one of `changed` inputs, or one of
// `nodes`, or are among them.
std::set<int> Downstream(const std::set<int>& changed, const std::set<int>& nodes = {}) {
  std::set<int> reach = nodes;
  for (int id = 0; id < kNodes; ++id) {
    const Node& n = graph[id];
    bool hit = false;
    for (int i : n.inputs) hit = hit || changed.contains(i);
    for (int d : n.nodes) hit = hit || reach.contains(d);
    // Forward(d), which it reads through, reads an input too (unused, but read).
    if (n.op == Node::kForward) hit = hit || changed.contains(n.nodes[0] % kInputs);
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
    const int choice = random() % 5;
    n.op = static_cast<Node::Op>(choice);
    const int reads = n.op == Node::kSelect ? 3 : n.op == Node::kForward ? 1 : 1 + random() % 3;
    for (int k = 0; k < reads; ++k) n.nodes.push_back(random() % id);
    if (n.op < Node::kSelect && random() % 3 == 0) n.inputs.push_back(random() % kInputs);
  }
}

// What the oracle evicts on every step: nothing; the values of results (every result is a
// candidate, the background evictor runs every millisecond, and before each round of reads
// everything written is evicted), so that changes pass through evicted tasks; or the
// values and then whole tasks (the evictor's second tier, and Engine::EvictTasks before
// each round), so that changes pass through tasks that are not in memory at all.
enum class Evicting { kNothing, kValues, kValuesAndTasks };

// `chunk_tasks`: snapshots write at most this many tasks per atomic write.
void RunOracle(Evicting mode,
               size_t chunk_tasks = turbine::EngineOptions{}.snapshot_chunk_tasks) {
  const bool evicting = mode != Evicting::kNothing;
  const uint64_t seed = 20261122;
  std::mt19937_64 random(seed);
  MakeGraph(random);
  turbine::testing::TempDir dir;
  std::vector<int64_t> inputs(kInputs, 0);
  // A new value for input i: an engine input is unset one time in five.
  const auto new_value = [&](int i) {
    const int64_t value = static_cast<int64_t>(random() % 10);
    return value >= 8 ? (i < kWorldFrom ? kUnset : value - 8) : value;
  };
  // Days pass between collections, so that a retention of a day or two removes something.
  std::atomic<int> day{0};
  const auto start = std::chrono::system_clock::now();
  std::unique_ptr<turbine::testing::PersistedEngine<>> daemon;
  auto open = [&] {
    turbine::EngineOptions options{.worker_threads = 2,
                                   .snapshot_chunk_tasks = chunk_tasks,
                                   .gc = {.interval = {}},
                                   .clock = [&] {
                                     return start + day.load() * std::chrono::hours(24);
                                   }};
    if (evicting) {
      options.memory = {.limit_bytes = 1,
                        .large_value_bytes = 0,
                        .interval = std::chrono::milliseconds(1),
                        .usage = [] { return size_t{2}; }};
    }
    return std::make_unique<turbine::testing::PersistedEngine<>>(dir.str(), std::move(options));
  };
  uint64_t evicted = 0;
  uint64_t evicted_tasks = 0;
  uint64_t trusted = 0;
  auto evict_everything = [&] {
    if (!evicting) return;
    ASSERT_TRUE(daemon->engine.Flush().ok());
    daemon->engine.Evict(SIZE_MAX);
    if (mode == Evicting::kValuesAndTasks) daemon->engine.EvictTasks(SIZE_MAX);
  };
  daemon = open();
  for (int i = 0; i < kInputs; ++i) ASSERT_TRUE(SetSource(&daemon->engine, i, 0).ok());

  std::vector<turbine::TaskId> node_ids(kNodes);
  auto read_all_and_check = [&](const std::string& when) {
    for (int id = kNodes - 1; id >= 0; --id) {
      const turbine::Vc<Boxed> vc = node(id);
      node_ids[id] = vc.raw().task;
      absl::StatusOr<Boxed> value = daemon->engine.Read(vc);
      const std::optional<int64_t> fresh = Fresh(inputs, id);
      if (!fresh) {
        ASSERT_FALSE(value.ok()) << "node " << id << " " << when << ": an input is not set";
        ASSERT_NE(value.status().message().find("is not set"), std::string::npos)
            << value.status() << " node " << id << " " << when;
        continue;
      }
      ASSERT_TRUE(value.ok()) << value.status() << " " << when;
      ASSERT_EQ(value->v, *fresh) << "node " << id << " " << when << " seed " << seed;
    }
    // World values are read too, as every node is, so that one whose evicted value a
    // collection removed executes now, not when a later change makes a reader need it.
    for (int i = kWorldFrom; i < kInputs; ++i) {
      absl::StatusOr<int64_t> value = daemon->engine.Read(world_value(i));
      ASSERT_TRUE(value.ok()) << value.status() << " " << when;
      ASSERT_EQ(*value, inputs[i]) << "world value " << i << " " << when;
    }
  };
  read_all_and_check("initially");

  // Nodes whose task, or the Forward they read through, a collection removed since the
  // last restart: they and what reads them may execute after it.
  std::set<int> collected;
  // After a restart, tasks restored as trusted verify only once an input change may reach
  // them (input_summary.h): those that read what a collection removed may execute then,
  // once, instead of before the restart.
  std::set<int> may_run_after_restart;
  // Nodes that read a task a collection removed, directly or through a Forward. A pass
  // runs while tasks execute and are written: one may remove a task that a result not yet
  // written reads or refers to (docs/ARCHITECTURE.md, "Garbage collection"). The reader
  // then finds the dependency missing when it next verifies, which reads as a change, or
  // its read follows the Forward's reference into nothing, which executes the Forward again
  // and changes its reference. Either way it runs once more than it would have, at any
  // later check, after a restart too (the result is written as it was). Only with eviction:
  // the removed task must have left memory while the result stayed.
  std::set<int> healing;
  const auto once_more = [&](int id) { return healing.contains(id) ? 1 : 0; };
  const auto healed = [&] {
    std::erase_if(healing, [&](int id) { return executions[id].load() > 0; });
  };
  int restarts = 0;
  int collections = 0;
  uint64_t removed = 0;
  int unset_collected = 0;  // records of unset inputs a collection removed
  for (int change = 0; change < 250; ++change) {
    const std::string when = "change " + std::to_string(change);
    if (random() % 4 == 0) {  // a collection, with settings that remove a lot
      turbine::GcOptions options;
      const int mode = random() % 3;
      if (mode == 0) {  // a random third of the tasks
        std::mt19937_64 pick(random());
        options.also_collect = [pick](turbine::TaskId) mutable { return pick() % 3 == 0; };
      } else if (mode == 1) {  // a random disk limit below what the store takes
        absl::StatusOr<uint64_t> bytes = daemon->owner->backing_store().DiskBytes();
        ASSERT_TRUE(bytes.ok());
        options.disk_limit = 1 + random() % *bytes;
      } else {  // a day or two pass; tasks not used for zero to two days go
        day += 1 + random() % 2;
        options.retention = std::chrono::hours(24) * (random() % 3);
      }
      // Forward(d)'s task, a world value's -> nodes reading it
      std::multimap<turbine::TaskId, int> forward_of;
      // a task -> nodes reading it, or reading a Forward to it
      std::multimap<turbine::TaskId, int> readers_of;
      for (int id = 0; id < kNodes; ++id) {
        if (graph[id].op == Node::kForward) {
          forward_of.emplace(forward(graph[id].nodes[0]).raw().task, id);
          readers_of.emplace(forward(graph[id].nodes[0]).raw().task, id);
          const int source = graph[id].nodes[0] % kInputs;
          if (source >= kWorldFrom) forward_of.emplace(world_value(source).raw().task, id);
          if (source < kWorldFrom) {
            forward_of.emplace(Input<int64_t>(Key(source)).raw().task, id);
            readers_of.emplace(Input<int64_t>(Key(source)).raw().task, id);
          }
        }
        for (int i : graph[id].inputs) {
          if (i >= kWorldFrom) forward_of.emplace(world_value(i).raw().task, id);
          if (i >= kWorldFrom) readers_of.emplace(world_value(i).raw().task, id);
          // An unset input is collected once no stored task reads it (or when picked): a
          // reader that verifies then finds it gone.
          if (i < kWorldFrom) forward_of.emplace(Input<int64_t>(Key(i)).raw().task, id);
          if (i < kWorldFrom) readers_of.emplace(Input<int64_t>(Key(i)).raw().task, id);
        }
        for (int d : graph[id].nodes) readers_of.emplace(node_ids[d], id);
      }
      std::vector<turbine::TaskId> input_ids;
      for (int i = 0; i < kWorldFrom; ++i) input_ids.push_back(Input<int64_t>(Key(i)).raw().task);
      absl::StatusOr<turbine::GcReport> report = daemon->engine.CollectGarbage(options);
      ASSERT_TRUE(report.ok()) << report.status() << " " << when;
      ++collections;
      removed += report->removed_tasks;
      std::set<int> world_collected;
      for (turbine::TaskId gone : report->removed) {
        for (int i = 0; i < kWorldFrom; ++i) unset_collected += input_ids[i] == gone ? 1 : 0;
        for (int id = 0; id < kNodes; ++id) {
          if (node_ids[id] == gone) collected.insert(id);
        }
        for (int i = kWorldFrom; i < kInputs; ++i) {
          if (world_value(i).raw().task == gone) world_collected.insert(i);
        }
        for (auto [reader, end] = forward_of.equal_range(gone); reader != end; ++reader) {
          collected.insert(reader->second);
        }
        for (auto [reader, end] = readers_of.equal_range(gone); reader != end && evicting;
             ++reader) {
          healing.insert(reader->second);
        }
      }
      // A world value whose evicted value the collection removed executes again when read,
      // with a new stamp: a reader trusted since a restart, which no reverse edge reaches,
      // finds that when a change first makes it verify, and runs once then.
      if (evicting) {
        for (int id : Downstream(world_collected)) may_run_after_restart.insert(id);
      }
      for (auto& e : executions) e = 0;
      read_all_and_check(when + " after a collection");  // in memory, nothing is lost
      if (evicting) {
        // Except evicted values the collection removed from the store: those tasks execute
        // when read, and, their old value gone, count as changed for their readers, which
        // were read before them: the second round settles them.
        read_all_and_check(when + " after a collection, again");
      }
      // A collected world value is a change (nothing checks it at the next open): what was
      // trusted over it verifies now, finds it gone, and executes once.
      const std::set<int> reach_collected_world = Downstream(world_collected);
      for (int id = 0; id < kNodes && !evicting; ++id) {
        // (An evicted value the collection removed is computed again.)
        const int may_run = reach_collected_world.contains(id) ? 1 : 0;
        EXPECT_LE(executions[id].load(), may_run + once_more(id))
            << "node " << id << " ran after a collection, " << when;
      }
      healed();
    }
    if (random() % 8 == 0) {  // restart: everything clean answers from disk
      // Half the time, inputs change just before the daemon stops, read by nothing: the
      // next session must see them (through the log of input changes, or for a world
      // value by checking it at open). World values also change while it is down.
      std::set<int> changed_while_down;
      for (int k = 0, count = random() % 2 == 0 ? 1 + random() % 2 : 0; k < count; ++k) {
        const int i = random() % kInputs;
        inputs[i] = new_value(i);
        changed_while_down.insert(i);
        ASSERT_TRUE(SetSource(&daemon->engine, i, inputs[i]).ok());
      }
      evicted += daemon->engine.Stats().evicted_values;
      evicted_tasks += daemon->engine.Stats().evicted_tasks;
      trusted += daemon->engine.Stats().trusted_restored_tasks;
      daemon.reset();
      if (random() % 2 == 0) {
        const int i = kWorldFrom + static_cast<int>(random() % (kInputs - kWorldFrom));
        inputs[i] = new_value(i);
        changed_while_down.insert(i);
        ASSERT_TRUE(SetSource(nullptr, i, inputs[i]).ok());
      }
      daemon = open();
      ++restarts;
      for (auto& e : executions) e = 0;
      read_all_and_check(when + " after a restart");
      const std::set<int> may_run = Downstream(changed_while_down, collected);
      for (int id = 0; id < kNodes; ++id) {
        if (may_run.contains(id) || may_run_after_restart.contains(id)) continue;
        EXPECT_LE(executions[id].load(), once_more(id))
            << "node " << id << " ran after a restart, " << when;
      }
      healed();
      std::erase_if(may_run_after_restart, [&](int id) { return executions[id].load() > 0; });
      // Those that did not run yet may run later, once a change makes them verify.
      for (int id : may_run) {
        if (executions[id].load() == 0) may_run_after_restart.insert(id);
      }
      collected.clear();
    }
    std::set<int> changed;
    for (int k = 0, count = 1 + random() % 2; k < count; ++k) {
      const int i = random() % kInputs;
      inputs[i] = new_value(i);
      changed.insert(i);
      ASSERT_TRUE(SetSource(&daemon->engine, i, inputs[i]).ok());
    }
    evict_everything();
    for (auto& e : executions) e = 0;
    read_all_and_check(when);
    const std::set<int> downstream = Downstream(changed);
    for (int id = 0; id < kNodes; ++id) {
      const bool may_run = downstream.contains(id) || may_run_after_restart.contains(id);
      EXPECT_LE(executions[id].load(), (may_run ? 1 : 0) + once_more(id))
          << "node " << id << ", " << when << " seed " << seed << [&] {
               std::string out;
               auto why = daemon->engine.Why(node(id).raw());
               if (why.ok()) for (auto& step : why->steps) out += "\n  " + step.text;
               return out;
             }();
    }
    // A restored task trusted over a collected dependency runs when a change first makes it
    // verify: any later change that may reach it (by its input summary), not only the next.
    std::erase_if(may_run_after_restart, [&](int id) { return executions[id].load() > 0; });
    healed();
  }
  EXPECT_GE(restarts, 15);
  EXPECT_GE(collections, 40);
  EXPECT_GT(removed, 500u);  // the collections did remove, and a lot
  EXPECT_GT(trusted, 100u);  // restarts did serve restored tasks without verifying them
  if (mode == Evicting::kValuesAndTasks) {
    // Unset inputs were collected, and read again after. Only here is one left unread in
    // memory now and then (every node is read at every step): its readers are evicted.
    EXPECT_GE(unset_collected, 1);
  }
  if (evicting) {
    evicted += daemon->engine.Stats().evicted_values;
    EXPECT_GT(evicted, 3000u);  // changes did pass through evicted tasks
  }
  if (mode == Evicting::kValuesAndTasks) {
    evicted_tasks += daemon->engine.Stats().evicted_tasks;
    EXPECT_GT(evicted_tasks, 1000u);  // and through tasks that were not in memory
  }
}

TEST(RestartOracle, RandomChangesRestartsAndCollectionsMatchFromScratchEvaluation) {
  RunOracle(Evicting::kNothing);
}

TEST(RestartOracle, WithValuesEvictedOnEveryStepAnswersStayRight) {
  RunOracle(Evicting::kValues);
}

TEST(RestartOracle, WithWholeTasksEvictedOnEveryStepAnswersStayRight) {
  RunOracle(Evicting::kValuesAndTasks);
}

// Snapshots in chunks of 3: a record and the tasks it refers to (kForward) often fall in
// different chunks, and restarts come between chunks of the background snapshots.
TEST(RestartOracle, WithSnapshotsWrittenInChunksOfThreeAnswersStayRight) {
  RunOracle(Evicting::kValuesAndTasks, 3);
}

}  // namespace
