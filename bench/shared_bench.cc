// shared_bench.cc — the shared cache tier's benchmarks (names: docs/ARCHITECTURE.md,
// "Benchmarks") on a real Redis Cluster. Run it through `bench/run shared`, which starts a
// cluster (3 primaries, 3 replicas) on free loopback ports and stops it afterwards; the
// binary finds it in TURBINE_BENCH_REDIS_SEEDS ("127.0.0.1:PORT,...").
//
//   shared-hit/10-input-deps   a call of sum10(k), a task reading 10 inputs, that another
//                              machine computed: one GET, decoding, 10 input digests
//                              compared, adoption. A fresh k each iteration, so every call
//                              misses memory and the local store.
//   shared-hit/10-task-deps    the same with 10 task dependencies (leaf(k, j), each reading
//                              one input), none of them here either: 11 traces fetched and
//                              verified, one after the other
//   shared-miss/noop           a task nobody published: the GET that misses, then a no-op
//                              execution; the price of the tier for new work
//   local-execute/1ms          executing a 1 ms task, no tier: what a shared hit replaces
//   shared-hit-aggregate/machines:N
//                              N machines (engines, each on its own RocksDB directory and
//                              its own cluster client), one thread each, all adopting fresh
//                              traces of sum10 at once; calls_per_s is all of them together
//   tree/shared, tree/cold     tree.summary over a generated directory (40 directories of
//                              50 files) through in-process daemons (turbine::server over a
//                              unix socket, each with its own data directory): on B after A
//                              computed and published it, and on B computing it alone
//
// The machines of one process share the cluster, the CPU and nothing else: each has its own
// engine, store and connections, and reads the other's work only through Redis.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "turbine/client/client.h"
#include "turbine/client/values.h"
#include "turbine/engine.h"
#include "turbine/server/server.h"
#include "turbine/shared/redis_tier.h"
#include "turbine/storage/persistent_engine.h"

namespace turbine::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kInputs = 10;

std::string InputName(int64_t j) { return "x" + std::to_string(j); }

Task<int64_t> Sum10Impl(int64_t key) {
  int64_t sum = key;
  for (int64_t j = 0; j < kInputs; ++j) sum += co_await Input<int64_t>(InputName(j));
  co_return sum;
}
inline const Function<Sum10Impl> sum10{"shared_bench.sum10", 1};

Task<int64_t> LeafImpl(int64_t key, int64_t j) {
  co_return key + co_await Input<int64_t>(InputName(j));
}
inline const Function<LeafImpl> leaf{"shared_bench.leaf", 1};

Task<int64_t> Sum10TasksImpl(int64_t key) {
  int64_t sum = 0;
  for (int64_t j = 0; j < kInputs; ++j) sum += co_await leaf(key, j);
  co_return sum;
}
inline const Function<Sum10TasksImpl> sum10_tasks{"shared_bench.sum10_tasks", 1};

Task<int64_t> SpinImpl(int64_t key, int64_t micros) {
  const auto deadline = Clock::now() + std::chrono::microseconds(micros);
  int64_t polls = 0;
  while (Clock::now() < deadline) ++polls;
  benchmark::DoNotOptimize(polls);
  co_return key;
}
inline const Function<SpinImpl> spin{"shared_bench.spin", 1};

// The expected values: sum10(k) = k + 1 + 2 + ... + 10; sum10_tasks(k) = 10 k + 55.
int64_t Sum10Of(int64_t key) { return key + 55; }
int64_t Sum10TasksOf(int64_t key) { return 10 * key + 55; }

std::vector<std::string> Seeds() {
  const char* seeds = std::getenv("TURBINE_BENCH_REDIS_SEEDS");
  std::vector<std::string> out;
  if (seeds == nullptr) return out;
  std::string text = seeds;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

fs::path FreshDir(const std::string& what) {
  static std::atomic<int> next{0};
  fs::path dir = fs::temp_directory_path() / ("turbine-shared-bench-" + std::to_string(getpid()) +
                                              "-" + what + "-" + std::to_string(next++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// NewNamespace: each benchmark run publishes into a namespace no run used before.
std::string NewNamespace(const std::string& what) {
  return "bench-" + what + "-" + std::to_string(getpid()) + "-" +
         std::to_string(Clock::now().time_since_epoch().count());
}

// Machine is one engine on its own RocksDB directory, with its own cluster client (or no
// tier), and the inputs x0..x9 = 1..10.
class Machine {
 public:
  Machine(const std::string& name_space, bool publish, bool with_tier = true)
      : dir_(FreshDir("machine")) {
    SharedTierOptions shared;
    if (with_tier) {
      auto tier = shared::RedisTier::Connect(
          {.seeds = Seeds(), .timeout = std::chrono::milliseconds(1000)});
      if (!tier.ok()) {
        error_ = std::string(tier.status().message());
        return;
      }
      shared = {.tier = *tier, .name_space = name_space, .publish = publish};
    }
    auto opened = storage::PersistentEngine::Open({.data_dir = dir_.string()},
                                                  EngineOptions{.shared = shared});
    if (!opened.ok()) {
      error_ = std::string(opened.status().message());
      return;
    }
    engine_ = std::move(*opened);
    std::vector<InputValue> inputs;
    for (int64_t j = 0; j < kInputs; ++j) inputs.push_back(InputValue::Of(InputName(j), j + 1));
    absl::Status set = engine().SetInputs(std::move(inputs));
    if (!set.ok()) error_ = std::string(set.message());
  }
  ~Machine() {
    engine_.reset();
    fs::remove_all(dir_);
  }

  const std::string& error() const { return error_; }
  Engine& engine() { return engine_->engine(); }

  // WaitPublished waits until `n` traces were written and nothing is queued; false after
  // a minute.
  bool WaitPublished(uint64_t n) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      const EngineStats stats = engine().Stats();
      if (stats.shared_published >= n && stats.shared_publish_queue == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

 private:
  fs::path dir_;
  std::string error_;
  std::unique_ptr<storage::PersistentEngine> engine_;
};

// Publish computes `make(key)` for key in [first, first + count) on `writer` and waits until
// all traces (`traces_per_key` each) are written.
template <class Make>
bool Publish(Machine& writer, int64_t first, int64_t count, uint64_t traces_per_key, Make make) {
  Engine::Scope scope(writer.engine());
  const uint64_t before = writer.engine().Stats().shared_published;
  std::vector<Vc<int64_t>> vcs;
  for (int64_t key = first; key < first + count; ++key) vcs.push_back(make(key));
  for (Vc<int64_t>& vc : vcs) {
    if (!writer.engine().Read(vc).ok()) return false;
  }
  return writer.WaitPublished(before + static_cast<uint64_t>(count) * traces_per_key);
}

// SharedHit: `reader` adopts make(key) for a fresh key each iteration.
template <class Make, class Expect>
void SharedHit(benchmark::State& state, uint64_t traces_per_key, Make make, Expect expect) {
  const std::vector<std::string> seeds = Seeds();
  if (seeds.empty()) return state.SkipWithError("TURBINE_BENCH_REDIS_SEEDS is not set");
  const int64_t keys = state.max_iterations;
  const std::string ns = NewNamespace("hit");
  Machine writer(ns, /*publish=*/true);
  Machine reader(ns, /*publish=*/false);
  if (!writer.error().empty()) return state.SkipWithError(writer.error().c_str());
  if (!reader.error().empty()) return state.SkipWithError(reader.error().c_str());
  if (!Publish(writer, 0, keys, traces_per_key, make)) return state.SkipWithError("publish");
  Engine::Scope scope(reader.engine());
  int64_t key = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> value = reader.engine().Read(make(key));
    if (!value.ok() || *value != expect(key)) return state.SkipWithError("wrong value");
    ++key;
  }
  const EngineStats stats = reader.engine().Stats();
  state.counters["shared_hits_per_op"] =
      static_cast<double>(stats.shared_hits) / static_cast<double>(key);
  state.counters["executions_per_op"] = 0;
  for (const FunctionStats& fn : stats.functions) {
    state.counters["executions_per_op"] += static_cast<double>(fn.executions) / key;
  }
}

void SharedHit10Inputs(benchmark::State& state) {
  SharedHit(
      state, 1, [](int64_t key) { return sum10(key); }, Sum10Of);
}

void SharedHit10Tasks(benchmark::State& state) {
  SharedHit(
      state, 1 + kInputs, [](int64_t key) { return sum10_tasks(key); }, Sum10TasksOf);
}

void SharedMissNoop(benchmark::State& state) {
  if (Seeds().empty()) return state.SkipWithError("TURBINE_BENCH_REDIS_SEEDS is not set");
  Machine reader(NewNamespace("miss"), /*publish=*/false);
  if (!reader.error().empty()) return state.SkipWithError(reader.error().c_str());
  Engine::Scope scope(reader.engine());
  int64_t key = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> value = reader.engine().Read(spin(key, 0));
    if (!value.ok() || *value != key) return state.SkipWithError("wrong value");
    ++key;
  }
  state.counters["shared_misses_per_op"] =
      static_cast<double>(reader.engine().Stats().shared_misses) / static_cast<double>(key);
}

void LocalExecute1ms(benchmark::State& state) {
  Machine local("", /*publish=*/false, /*with_tier=*/false);
  if (!local.error().empty()) return state.SkipWithError(local.error().c_str());
  Engine::Scope scope(local.engine());
  int64_t key = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> value = local.engine().Read(spin(key, 1000));
    if (!value.ok() || *value != key) return state.SkipWithError("wrong value");
    ++key;
  }
}

// SharedHitAggregate: state.range(0) machines adopt kPerMachine fresh traces each, all at
// once, one thread per machine. One iteration; the time is the slowest machine's.
void SharedHitAggregate(benchmark::State& state) {
  constexpr int64_t kPerMachine = 4000;
  if (Seeds().empty()) return state.SkipWithError("TURBINE_BENCH_REDIS_SEEDS is not set");
  const int machines = static_cast<int>(state.range(0));
  const std::string ns = NewNamespace("aggregate");
  Machine writer(ns, /*publish=*/true);
  if (!writer.error().empty()) return state.SkipWithError(writer.error().c_str());
  if (!Publish(writer, 0, kPerMachine * machines, 1, [](int64_t key) { return sum10(key); })) {
    return state.SkipWithError("publish");
  }
  std::vector<std::unique_ptr<Machine>> readers;
  for (int m = 0; m < machines; ++m) {
    readers.push_back(std::make_unique<Machine>(ns, /*publish=*/false));
    if (!readers.back()->error().empty())
      return state.SkipWithError(readers.back()->error().c_str());
  }
  std::atomic<int64_t> wrong{0};
  uint64_t hits = 0;
  for (auto _ : state) {
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int m = 0; m < machines; ++m) {
      threads.emplace_back([&, m] {
        Machine& reader = *readers[m];
        Engine::Scope scope(reader.engine());
        // Machine m reads its own keys: every call a shared hit, none served by memory.
        for (int64_t key = m * kPerMachine; key < (m + 1) * kPerMachine; ++key) {
          absl::StatusOr<int64_t> value = reader.engine().Read(sum10(key));
          if (!value.ok() || *value != Sum10Of(key)) ++wrong;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    state.SetIterationTime(seconds);
    state.counters["calls_per_s"] = static_cast<double>(kPerMachine * machines) / seconds;
  }
  if (wrong > 0) return state.SkipWithError("wrong values");
  for (auto& reader : readers) hits += reader->engine().Stats().shared_hits;
  state.counters["shared_hits_per_call"] =
      static_cast<double>(hits) / static_cast<double>(kPerMachine * machines);
}

// TreeDir is a generated tree of 40 directories with 50 small files each, made once and
// older than the stat signatures' racy window (a younger file is never a shared key).
const fs::path& TreeDir() {
  static const fs::path dir = [] {
    fs::path root = FreshDir("tree");
    const auto old = fs::file_time_type::clock::now() - std::chrono::hours(1);
    for (int d = 0; d < 40; ++d) {
      const fs::path sub = root / ("dir" + std::to_string(d));
      fs::create_directories(sub);
      for (int f = 0; f < 50; ++f) {
        const fs::path file = sub / ("file" + std::to_string(f) + ".txt");
        std::ofstream out(file);
        for (int line = 0; line <= (d * 50 + f) % 20; ++line) out << "line " << line << "\n";
        out.close();
        fs::last_write_time(file, old);
      }
    }
    // A file's ctime (which its signature includes and no one can set) ages only with time.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    return root;
  }();
  return dir;
}

// Daemon is an in-process turbined: a server on its own data directory and unix socket.
class Daemon {
 public:
  Daemon(const std::string& name_space, bool publish, bool with_tier) : dir_(FreshDir("daemon")) {
    server::ServerOptions options{.data_dir = (dir_ / "data").string(),
                                  .listen = {"unix:" + (dir_ / "sock").string()}};
    if (with_tier) {
      auto tier = shared::RedisTier::Connect(
          {.seeds = Seeds(), .timeout = std::chrono::milliseconds(1000)});
      if (!tier.ok()) {
        error_ = std::string(tier.status().message());
        return;
      }
      options.shared = {.tier = *tier, .name_space = name_space, .publish = publish};
    }
    auto started = server::Server::Start(options);
    if (!started.ok()) {
      error_ = std::string(started.status().message());
      return;
    }
    server_ = std::move(*started);
    auto client = client::Client::Connect({.address = "unix:" + (dir_ / "sock").string()});
    if (!client.ok()) {
      error_ = std::string(client.status().message());
      return;
    }
    client_ = std::move(*client);
  }
  ~Daemon() {
    client_.reset();
    server_.reset();
    fs::remove_all(dir_);
  }
  const std::string& error() const { return error_; }
  client::Client& client() { return *client_; }
  // Published is how many traces it wrote, and whether none is waiting.
  bool Drained(uint64_t n) {
    auto stats = client_->Stats();
    return stats.ok() && stats->shared_published() >= n && stats->shared_publish_queue() == 0;
  }

 private:
  fs::path dir_;
  std::string error_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<client::Client> client_;
};

// Tree: one tree.summary call on a fresh daemon B per iteration (manual time: the call
// alone). With `shared`, A computed and published it first.
void Tree(benchmark::State& state, bool shared) {
  if (Seeds().empty()) return state.SkipWithError("TURBINE_BENCH_REDIS_SEEDS is not set");
  const std::string tree = TreeDir().string();
  const std::string ns = NewNamespace("tree");
  std::string expected;
  if (shared) {
    Daemon a(ns, /*publish=*/true, /*with_tier=*/true);
    if (!a.error().empty()) return state.SkipWithError(a.error().c_str());
    auto on_a = a.client().Call("tree.summary", {client::Str(tree)});
    if (!on_a.ok() || !on_a->value.ok()) return state.SkipWithError("tree.summary on A failed");
    expected = on_a->value->DebugString();
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!a.Drained(1 + 40 + 1) && Clock::now() < deadline) {  // summary, dirs, the root
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  uint64_t shared_answers = 0;
  for (auto _ : state) {
    Daemon b(ns, /*publish=*/false, /*with_tier=*/shared);
    if (!b.error().empty()) return state.SkipWithError(b.error().c_str());
    const auto start = Clock::now();
    auto on_b = b.client().Call("tree.summary", {client::Str(tree)});
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - start).count());
    if (!on_b.ok() || !on_b->value.ok()) return state.SkipWithError("tree.summary on B failed");
    if (shared && on_b->value->DebugString() != expected) {
      return state.SkipWithError("B's summary differs from A's");
    }
    shared_answers += on_b->source == v1::SOURCE_SHARED ? 1 : 0;
  }
  state.counters["shared_answers_per_op"] =
      static_cast<double>(shared_answers) / static_cast<double>(state.iterations());
}

void RegisterSharedBenchmarks() {
  benchmark::RegisterBenchmark("shared-hit/10-input-deps", SharedHit10Inputs)->Iterations(5000);
  benchmark::RegisterBenchmark("shared-hit/10-task-deps", SharedHit10Tasks)->Iterations(2000);
  benchmark::RegisterBenchmark("shared-miss/noop", SharedMissNoop)->Iterations(5000);
  benchmark::RegisterBenchmark("local-execute/1ms", LocalExecute1ms)->Iterations(1000);
  benchmark::RegisterBenchmark("shared-hit-aggregate", SharedHitAggregate)
      ->ArgName("machines")
      ->Arg(1)
      ->Arg(4)
      ->Iterations(1)
      ->UseManualTime();
  benchmark::RegisterBenchmark("tree/shared", Tree, true)->Iterations(5)->UseManualTime();
  benchmark::RegisterBenchmark("tree/cold", Tree, false)->Iterations(5)->UseManualTime();
}

}  // namespace
}  // namespace turbine::bench

int main(int argc, char** argv) {
  // As in engine_bench: Abseil's deadlock detection is a debugging aid, off in turbined too.
  turbine::DisableMutexDeadlockDetection();
  benchmark::AddCustomContext("absl_deadlock_detection", "off");
  turbine::bench::RegisterSharedBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
