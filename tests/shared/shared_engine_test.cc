// Engines sharing traces through the real Redis Cluster of the `redis_cluster` fixture.
// Each engine stands for one machine: its own memory, its own inputs; only the cluster is
// common. Every test uses a namespace of its own, so tests never see each other's records.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../backend/read_now.h"
#include "redis_test_env.h"
#include "turbine/engine.h"
#include "turbine/shared/redis_tier.h"

namespace turbine::testing {
namespace {

using turbine::shared::RedisOptions;
using turbine::shared::RedisTier;

// scale(i) = input "x<i>" * 10; total(n) = scale(0) + ... + scale(n-1).
Task<int64_t> ScaleImpl(int64_t i) {
  co_return (co_await Input<int64_t>("x" + std::to_string(i))) * 10;
}
inline const Function<ScaleImpl> scale{"shared_test.scale", 1};

Task<int64_t> TotalImpl(int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += co_await scale(i);
  co_return sum;
}
inline const Function<TotalImpl> total{"shared_test.total", 1};

// A different version of total's function would have another key: never mixed up.
Task<std::string> TextImpl(std::string name) {
  co_return "hello " + name + " " + std::to_string(co_await scale(0));
}
inline const Function<TextImpl> text{"shared_test.text", 1};

// Task references: shapes whose size is an input, methods with a receiver, a trait method
// dispatched on the receiver's value type, a function taking task references as arguments,
// a value holding Vcs and an output that is a reference to another task.
struct Shape {
  static constexpr std::string_view kTraitName = "shared_test.Shape";
};
struct Square {
  int64_t side = 0;
  bool operator==(const Square&) const = default;
  static constexpr std::string_view kTypeName = "shared_test.Square";
  static constexpr auto kFields = std::make_tuple(field("side", &Square::side));
};
struct Circle {
  int64_t radius = 0;
  bool operator==(const Circle&) const = default;
  static constexpr std::string_view kTypeName = "shared_test.Circle";
  static constexpr auto kFields = std::make_tuple(field("radius", &Circle::radius));
};

Task<Vc<Shape>> MakeShapeImpl(std::string kind, std::string size_input) {
  const int64_t size = co_await Input<int64_t>(size_input);
  if (kind == "square") co_return Cell(Square{size});
  co_return Cell(Circle{size});
}
inline const Function<MakeShapeImpl> make_shape{"shared_test.make_shape", 1};

Task<int64_t> SquareAreaImpl(Vc<Square> self) {
  const Square square = co_await self;
  co_return square.side* square.side;
}
inline const Method<SquareAreaImpl> square_area{"shared_test.Square.area", 1};
Task<int64_t> CircleAreaImpl(Vc<Circle> self) {
  const Circle circle = co_await self;
  co_return 3 * circle.radius* circle.radius;
}
inline const Method<CircleAreaImpl> circle_area{"shared_test.Circle.area", 1};
inline const TraitMethod<Shape, int64_t> shape_area{"shared_test.Shape.area", 1};
inline const TraitImpl square_is_a_shape{shape_area, square_area};
inline const TraitImpl circle_is_a_shape{shape_area, circle_area};

Task<int64_t> SumAreasImpl(Vc<Shape> a, Vc<Shape> b) {
  co_return (co_await shape_area(a)) + (co_await shape_area(b));
}
inline const Function<SumAreasImpl> sum_areas{"shared_test.sum_areas", 1};

// areas holds Vcs: a value naming other tasks. sum_list reads it and follows them.
Task<std::vector<Vc<int64_t>>> AreasImpl(Vc<Shape> a, Vc<Shape> b) {
  co_return std::vector<Vc<int64_t>>{shape_area(a), shape_area(b)};
}
inline const Function<AreasImpl> areas{"shared_test.areas", 1};
Task<int64_t> SumListImpl(Vc<std::vector<Vc<int64_t>>> list) {
  int64_t sum = 0;
  for (const Vc<int64_t>& area : co_await list) sum += co_await area;
  co_return sum;
}
inline const Function<SumListImpl> sum_list{"shared_test.sum_list", 1};
// larger answers with a reference to another task's output.
Task<Vc<int64_t>> LargerImpl(Vc<Shape> a, Vc<Shape> b) {
  const int64_t left = co_await shape_area(a);
  const int64_t right = co_await shape_area(b);
  co_return left >= right ? shape_area(a) : shape_area(b);
}
inline const Function<LargerImpl> larger{"shared_test.larger", 1};

// plus_one(plus_one(...(scale(0)))): each level's identity names the one below it.
Task<int64_t> PlusOneImpl(Vc<int64_t> inner) { co_return (co_await inner) + 1; }
inline const Function<PlusOneImpl> plus_one{"shared_test.plus_one", 1};
Vc<int64_t> Nested(int levels) {
  Vc<int64_t> vc = scale(0);
  for (int i = 0; i < levels; ++i) vc = plus_one(vc);
  return vc;
}

uint64_t ExecutionsOf(const Engine& engine, const std::string& name) {
  for (const FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == name) return fn.executions;
  }
  return 0;
}

std::string Namespace() {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(test->name()) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// CountingTier passes everything to the real tier and counts the requests the engine
// makes of it: each Lookup or LookupMany is one round trip (per cluster node).
class CountingTier final : public turbine::SharedTier {
 public:
  explicit CountingTier(std::shared_ptr<turbine::SharedTier> tier) : tier_(std::move(tier)) {}
  absl::StatusOr<std::optional<std::string>> Lookup(const std::string& key) override {
    requests.fetch_add(1);
    return tier_->Lookup(key);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> LookupMany(
      const std::vector<std::string>& keys) override {
    requests.fetch_add(1);
    return tier_->LookupMany(keys);
  }
  absl::Status Publish(const std::vector<std::pair<std::string, std::string>>& records) override {
    return tier_->Publish(records);
  }
  std::atomic<int> requests{0};

 private:
  std::shared_ptr<turbine::SharedTier> tier_;
};

// Machine is one engine with the shared tier.
struct Machine {
  Machine(const std::vector<std::string>& seeds, const std::string& name_space, bool publish,
          std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
    auto tier = RedisTier::Connect(RedisOptions{.seeds = seeds, .timeout = timeout});
    EXPECT_TRUE(tier.ok()) << tier.status();
    if (!tier.ok()) std::abort();
    this->tier = *tier;
    counting = std::make_shared<CountingTier>(this->tier);
    auto opened = Engine::Open(EngineOptions{
        .worker_threads = 2,
        .logger =
            [this](LogLevel, std::string_view message) {
              std::lock_guard<std::mutex> lock(log_mu);  // lookups and publishing both log
              log.emplace_back(message);
            },
        .shared = {.tier = counting, .name_space = name_space, .publish = publish}});
    EXPECT_TRUE(opened.ok());
    engine = std::move(*opened);
  }
  // SetInputs x0..x(n-1) = values.
  void SetX(const std::vector<int64_t>& values) {
    std::vector<InputValue> inputs;
    for (size_t i = 0; i < values.size(); ++i) {
      inputs.push_back(InputValue::Of("x" + std::to_string(i), values[i]));
    }
    ASSERT_TRUE(engine->SetInputs(std::move(inputs)).ok());
  }
  // Read calls (`make` makes the Vc: a call needs this engine current) and reads.
  template <class Make>
  Engine::AsyncRead Read(Make make) {
    Engine::Scope scope(*engine);
    return ReadNow(*engine, make());
  }
  // WaitPublished waits until `n` traces were written and nothing is queued.
  void WaitPublished(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const EngineStats stats = engine->Stats();
      if (stats.shared_published >= n && stats.shared_publish_queue == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "published " << engine->Stats().shared_published << " of " << n;
  }

  std::shared_ptr<RedisTier> tier;
  std::shared_ptr<CountingTier> counting;  // what the engine uses: `tier`, counted
  // LogLines counts the lines of the log that hold `text`.
  int LogLines(std::string_view text) {
    std::lock_guard<std::mutex> lock(log_mu);
    return static_cast<int>(std::count_if(log.begin(), log.end(), [&](const std::string& line) {
      return line.find(text) != std::string::npos;
    }));
  }
  // WaitDropped waits until more than `before` traces were dropped and nothing is queued.
  void WaitDropped(uint64_t before) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const EngineStats stats = engine->Stats();
      if (stats.shared_publish_dropped > before && stats.shared_publish_queue == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ADD_FAILURE() << "dropped " << engine->Stats().shared_publish_dropped << ", before " << before;
  }

  std::mutex log_mu;
  std::vector<std::string> log;  // before engine: the logger outlives it
  std::unique_ptr<Engine> engine;
};

int64_t IntOf(const Engine::AsyncRead& read) {
  EXPECT_TRUE(read.status.ok()) << read.status;
  return read.status.ok() ? *static_cast<const int64_t*>(read.value.get()) : -1;
}

class SharedEngine : public ::testing::Test {
 protected:
  std::vector<std::string> seeds_ = SplitSeeds(ClusterSeeds());
  std::string ns_ = Namespace();
};

TEST_F(SharedEngine, ASecondMachineAdoptsWithoutExecuting) {
  ASSERT_FALSE(seeds_.empty()) << "the redis_cluster fixture did not run";
  Machine a(seeds_, ns_, /*publish=*/true);
  a.SetX({1, 2, 3, 4});
  EXPECT_EQ(IntOf(a.Read([] { return total(4).raw(); })), 100);
  EXPECT_EQ(ExecutionsOf(*a.engine, "shared_test.scale"), 4u);
  a.WaitPublished(5);  // four scales and the total

  Machine b(seeds_, ns_, /*publish=*/false);
  b.SetX({1, 2, 3, 4});
  Engine::AsyncRead read = b.Read([] { return total(4).raw(); });
  EXPECT_EQ(IntOf(read), 100);
  EXPECT_TRUE(read.shared);
  EXPECT_FALSE(read.executed) << "an adoption is no execution, of the task or what it reads";
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.total"), 0u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 0u);
  EXPECT_EQ(b.engine->Stats().shared_hits, 5u);
  EXPECT_EQ(b.engine->Stats().shared_verify_failures, 0u);
  // Adopted results are ordinary from then on: an input change here re-executes.
  ASSERT_TRUE(b.engine->SetInput("x0", int64_t{5}).ok());
  read = b.Read([] { return total(4).raw(); });
  EXPECT_EQ(IntOf(read), 140);
  EXPECT_FALSE(read.shared);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.total"), 1u);
}

// A trace's task dependencies that are not on this machine either are fetched together,
// not one round trip each (the verification still goes through them in order).
TEST_F(SharedEngine, TheTracesOfATracesDependenciesAreFetchedTogether) {
  ASSERT_FALSE(seeds_.empty()) << "the redis_cluster fixture did not run";
  Machine a(seeds_, ns_, /*publish=*/true);
  a.SetX({1, 2, 3, 4});
  EXPECT_EQ(IntOf(a.Read([] { return total(4).raw(); })), 100);
  a.WaitPublished(5);

  Machine b(seeds_, ns_, /*publish=*/false);
  b.SetX({1, 2, 3, 4});
  EXPECT_EQ(IntOf(b.Read([] { return total(4).raw(); })), 100);
  EXPECT_EQ(b.engine->Stats().shared_hits, 5u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 0u);
  // total's trace, then its four scales' at once (the inputs they read are never looked up).
  EXPECT_EQ(b.counting->requests.load(), 2);
  // A scale that differs here is executed, and its prefetched trace does not stand in.
  Machine c(seeds_, ns_, /*publish=*/false);
  c.SetX({1, 2, 3, 5});
  EXPECT_EQ(IntOf(c.Read([] { return total(4).raw(); })), 110);
  EXPECT_EQ(ExecutionsOf(*c.engine, "shared_test.scale"), 1u);
  EXPECT_EQ(ExecutionsOf(*c.engine, "shared_test.total"), 1u);
}

TEST_F(SharedEngine, ADifferentInputExecutesExactlyWhatDiffers) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  a.SetX({1, 2, 3, 4});
  EXPECT_EQ(IntOf(a.Read([] { return total(4).raw(); })), 100);
  a.WaitPublished(5);

  Machine b(seeds_, ns_, false);
  b.SetX({1, 2, 7, 4});  // x2 differs here
  Engine::AsyncRead read = b.Read([] { return total(4).raw(); });
  EXPECT_EQ(IntOf(read), 140);
  EXPECT_FALSE(read.shared);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.total"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 1u);  // scale(2) only
  const EngineStats stats = b.engine->Stats();
  EXPECT_EQ(stats.shared_hits, 3u);             // scale(0), scale(1), scale(3)
  EXPECT_EQ(stats.shared_verify_failures, 2u);  // scale(2) (its input), total (scale(2))
}

TEST_F(SharedEngine, AnInputNotSetHereIsADifference) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  a.SetX({1});
  EXPECT_EQ(IntOf(a.Read([] { return scale(0).raw(); })), 10);
  a.WaitPublished(1);
  Machine b(seeds_, ns_, false);  // x0 never set
  Engine::AsyncRead read = b.Read([] { return scale(0).raw(); });
  EXPECT_FALSE(read.status.ok());
  EXPECT_EQ(b.engine->Stats().shared_verify_failures, 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 1u);
}

TEST_F(SharedEngine, AnotherNamespaceIsInvisible) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  a.SetX({1, 2});
  EXPECT_EQ(IntOf(a.Read([] { return total(2).raw(); })), 30);
  a.WaitPublished(3);
  Machine c(seeds_, ns_ + "-other", false);
  c.SetX({1, 2});
  EXPECT_EQ(IntOf(c.Read([] { return total(2).raw(); })), 30);
  EXPECT_EQ(ExecutionsOf(*c.engine, "shared_test.scale"), 2u);
  EXPECT_EQ(c.engine->Stats().shared_hits, 0u);
  EXPECT_EQ(c.engine->Stats().shared_misses, 3u);
}

// KeysOf lists the records of a namespace, on every primary.
std::vector<std::string> KeysOf(RedisTier& tier, const std::string& name_space) {
  std::vector<std::string> keys;
  for (const std::string& primary : tier.client().Primaries()) {
    std::string out = RedisCli(primary, "--scan --pattern 'turbine:" + name_space + ":*'");
    size_t start = 0;
    while (start < out.size()) {
      size_t end = out.find('\n', start);
      if (end == std::string::npos) end = out.size();
      if (end > start) keys.push_back(out.substr(start, end - start));
      start = end + 1;
    }
  }
  return keys;
}

TEST_F(SharedEngine, DamagedAndGarbageRecordsAreIgnoredAndCounted) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  a.SetX({1, 2, 3});
  EXPECT_EQ(IntOf(a.Read([] { return total(3).raw(); })), 60);
  a.WaitPublished(4);
  std::vector<std::string> keys = KeysOf(*a.tier, ns_);
  ASSERT_EQ(keys.size(), 4u);
  auto records = a.tier->client().MultiGet(keys);
  ASSERT_TRUE(records.ok());
  // One record garbage, the others with one bit flipped somewhere inside.
  std::vector<std::pair<std::string, std::string>> damaged;
  for (size_t i = 0; i < keys.size(); ++i) {
    std::string bytes = *(*records)[i];
    if (i == 0) {
      bytes = "not a trace at all";
    } else {
      bytes[bytes.size() / 2] ^= 0x10;
    }
    damaged.emplace_back(keys[i], bytes);
  }
  ASSERT_TRUE(a.tier->client().MultiSet(damaged).ok());

  Machine b(seeds_, ns_, false);
  b.SetX({1, 2, 3});
  Engine::AsyncRead read = b.Read([] { return total(3).raw(); });
  EXPECT_EQ(IntOf(read), 60);
  EXPECT_FALSE(read.shared);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 3u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.total"), 1u);
  EXPECT_EQ(b.engine->Stats().shared_ignored, 4u);
  EXPECT_EQ(b.engine->Stats().shared_hits, 0u);
}

TEST_F(SharedEngine, ValuesOfOtherTypesRoundTrip) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  a.SetX({4});
  Engine::AsyncRead first = a.Read([] { return text(std::string("wor\0ld", 6)).raw(); });
  ASSERT_TRUE(first.status.ok());
  a.WaitPublished(2);
  Machine b(seeds_, ns_, false);
  b.SetX({4});
  Engine::AsyncRead read = b.Read([] { return text(std::string("wor\0ld", 6)).raw(); });
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_TRUE(read.shared);
  EXPECT_EQ(*static_cast<const std::string*>(read.value.get()),
            *static_cast<const std::string*>(first.value.get()));
}

TEST_F(SharedEngine, LargeArgumentsAndValuesShare) {
  ASSERT_FALSE(seeds_.empty());
  // Larger than the bound on names of references, which applies to names only.
  const std::string name(100'000, 'n');
  Machine a(seeds_, ns_, true);
  a.SetX({4});
  ASSERT_TRUE(a.Read([&] { return text(name).raw(); }).status.ok());
  a.WaitPublished(2);
  Machine b(seeds_, ns_, false);
  b.SetX({4});
  Engine::AsyncRead read = b.Read([&] { return text(name).raw(); });
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_TRUE(read.shared);
  EXPECT_EQ(*static_cast<const std::string*>(read.value.get()), "hello " + name + " 40");
}

// A full Redis refuses every publish and answers every lookup: one line says publishing
// failed, none says the cache is back while it is still full, and one says so when it has
// room again. Before: a "publishing failed" and an "available again" line for every batch.
TEST_F(SharedEngine, AFullRedisIsLoggedOnceUntilPublishingWorksAgain) {
  PlainRedis redis;
  RedisCli(redis.address(), "CONFIG SET maxmemory-policy noeviction");
  RedisCli(redis.address(), "CONFIG SET maxmemory 1");
  Machine a({redis.address()}, ns_, true);
  a.SetX({1, 2, 3, 4, 5, 6, 7, 8, 9});
  for (int64_t n = 1; n <= 4; ++n) {  // a new total each time: it is looked up, then published
    const uint64_t dropped = a.engine->Stats().shared_publish_dropped;
    EXPECT_EQ(IntOf(a.Read([n] { return total(n).raw(); })), n * (n + 1) / 2 * 10);
    a.WaitDropped(dropped);
  }
  EXPECT_GE(a.engine->Stats().shared_misses, 8u);  // lookups were answered
  EXPECT_EQ(a.engine->Stats().shared_errors, 0u);
  EXPECT_EQ(a.LogLines("publishing failed"), 1);
  EXPECT_NE(a.LogLines("OOM"), 0);  // the line says why
  EXPECT_EQ(a.LogLines("available again"), 0);
  EXPECT_EQ(a.LogLines("publishing again"), 0);

  RedisCli(redis.address(), "CONFIG SET maxmemory 0");
  // "Publishing again" is said by a publish once a second has gone by without a failure
  // (outage_log.h): new totals are published until one says it.
  for (int64_t n = 5; n <= 9 && a.LogLines("publishing again") == 0; ++n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    const uint64_t published = a.engine->Stats().shared_published;
    EXPECT_EQ(IntOf(a.Read([n] { return total(n).raw(); })), n * (n + 1) / 2 * 10);
    a.WaitPublished(published + 1);
  }
  EXPECT_EQ(a.LogLines("publishing again"), 1);
  EXPECT_EQ(a.LogLines("publishing failed"), 1);
}

TEST_F(SharedEngine, AStoppedServerDegradesToLocalWithinTheTimeout) {
  PlainRedis redis;  // not a cluster: the tier works on one plain Redis as well
  const auto timeout = std::chrono::milliseconds(100);
  Machine a({redis.address()}, ns_, true, timeout);
  a.SetX({1, 2, 3});
  EXPECT_EQ(IntOf(a.Read([] { return total(3).raw(); })), 60);
  a.WaitPublished(4);

  Machine b({redis.address()}, ns_, false, timeout);
  b.SetX({1, 2, 3});
  const std::string info = RedisCli(redis.address(), "INFO server | grep process_id");
  const int pid = std::stoi(info.substr(info.find(':') + 1));
  ASSERT_EQ(kill(pid, SIGSTOP), 0);  // hung: connections open, nothing answers
  const auto start = std::chrono::steady_clock::now();
  Engine::AsyncRead read = b.Read([] { return total(3).raw(); });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  kill(pid, SIGCONT);
  EXPECT_EQ(IntOf(read), 60);
  EXPECT_FALSE(read.shared);
  // One lookup waited for the timeout; the rest failed at once.
  EXPECT_LT(elapsed, timeout * 4);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 3u);
  EXPECT_GE(b.engine->Stats().shared_errors, 1u);
  ASSERT_FALSE(b.log.empty());
  EXPECT_NE(b.log[0].find("shared cache unavailable"), std::string::npos) << b.log[0];
}

// The work of one shape test: a square of side s0 and a circle of radius s1.
Vc<int64_t> SumOfShapes() {
  return sum_areas(make_shape("square", "s0"), make_shape("circle", "s1"));
}

TEST_F(SharedEngine, TaskReferenceArgumentsAndTraitMethodsShare) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  ASSERT_TRUE(
      a.engine->SetInputs({InputValue::Of("s0", int64_t{3}), InputValue::Of("s1", int64_t{2})})
          .ok());
  EXPECT_EQ(IntOf(a.Read([] { return SumOfShapes().raw(); })), 9 + 12);
  // sum_areas, two make_shape, two shape_area dispatches, Square.area, Circle.area.
  a.WaitPublished(7);

  Machine b(seeds_, ns_, false);
  ASSERT_TRUE(
      b.engine->SetInputs({InputValue::Of("s0", int64_t{3}), InputValue::Of("s1", int64_t{2})})
          .ok());
  Engine::AsyncRead read = b.Read([] { return SumOfShapes().raw(); });
  EXPECT_EQ(IntOf(read), 21);
  EXPECT_TRUE(read.shared);
  for (const char* fn :
       {"shared_test.sum_areas", "shared_test.make_shape", "shared_test.Shape.area",
        "shared_test.Square.area", "shared_test.Circle.area"}) {
    EXPECT_EQ(ExecutionsOf(*b.engine, fn), 0u) << fn;
  }
  EXPECT_EQ(b.engine->Stats().shared_hits, 7u);
  EXPECT_EQ(b.engine->Stats().shared_verify_failures, 0u);

  // The circle's radius changed here: what reads it executes (its shape, the dispatch,
  // which resolves the receiver to its cell, its area, the sum); the square's work does not.
  ASSERT_TRUE(b.engine->SetInput("s1", int64_t{4}).ok());
  read = b.Read([] { return SumOfShapes().raw(); });
  EXPECT_EQ(IntOf(read), 9 + 48);
  EXPECT_FALSE(read.shared);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.make_shape"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.Shape.area"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.Circle.area"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.sum_areas"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.Square.area"), 0u);
}

TEST_F(SharedEngine, ADifferentReferencedTaskHereExecutesExactlyWhatDiffers) {
  ASSERT_FALSE(seeds_.empty());
  Machine a(seeds_, ns_, true);
  ASSERT_TRUE(
      a.engine->SetInputs({InputValue::Of("s0", int64_t{3}), InputValue::Of("s1", int64_t{2})})
          .ok());
  EXPECT_EQ(IntOf(a.Read([] { return SumOfShapes().raw(); })), 21);
  a.WaitPublished(7);

  Machine b(seeds_, ns_, false);  // the square's side differs here
  ASSERT_TRUE(
      b.engine->SetInputs({InputValue::Of("s0", int64_t{5}), InputValue::Of("s1", int64_t{2})})
          .ok());
  Engine::AsyncRead read = b.Read([] { return SumOfShapes().raw(); });
  EXPECT_EQ(IntOf(read), 25 + 12);
  EXPECT_FALSE(read.shared);
  // The square's make_shape (its input), dispatch (the cell it resolves to) and area, and
  // the sum; the circle's three adopted.
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.make_shape"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.Shape.area"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.Square.area"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.sum_areas"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.Circle.area"), 0u);
  EXPECT_EQ(b.engine->Stats().shared_hits, 3u);
  EXPECT_EQ(b.engine->Stats().shared_verify_failures, 4u);
}

TEST_F(SharedEngine, ValuesHoldingVcsAndReferenceOutputsShare) {
  ASSERT_FALSE(seeds_.empty());
  auto list = [] {
    return sum_list(areas(make_shape("square", "s0"), make_shape("circle", "s1")));
  };
  auto big = [] { return larger(make_shape("square", "s0"), make_shape("circle", "s1")); };
  Machine a(seeds_, ns_, true);
  ASSERT_TRUE(
      a.engine->SetInputs({InputValue::Of("s0", int64_t{3}), InputValue::Of("s1", int64_t{2})})
          .ok());
  EXPECT_EQ(IntOf(a.Read([&] { return list().raw(); })), 21);
  EXPECT_EQ(IntOf(a.Read([&] { return big().raw(); })), 12);
  // sum_list, areas, larger, two make_shape, two dispatches, two areas.
  a.WaitPublished(9);

  Machine b(seeds_, ns_, false);
  ASSERT_TRUE(
      b.engine->SetInputs({InputValue::Of("s0", int64_t{3}), InputValue::Of("s1", int64_t{2})})
          .ok());
  Engine::AsyncRead read = b.Read([&] { return list().raw(); });
  EXPECT_EQ(IntOf(read), 21);
  EXPECT_TRUE(read.shared);
  read = b.Read([&] { return big().raw(); });
  EXPECT_EQ(IntOf(read), 12);
  EXPECT_TRUE(read.shared);
  for (const char* fn :
       {"shared_test.sum_list", "shared_test.areas", "shared_test.larger", "shared_test.make_shape",
        "shared_test.Shape.area", "shared_test.Square.area", "shared_test.Circle.area"}) {
    EXPECT_EQ(ExecutionsOf(*b.engine, fn), 0u) << fn;
  }
  // The adopted values name tasks of this engine: a change here flows through them.
  ASSERT_TRUE(b.engine->SetInput("s0", int64_t{4}).ok());
  EXPECT_EQ(IntOf(b.Read([&] { return list().raw(); })), 16 + 12);
  EXPECT_EQ(IntOf(b.Read([&] { return big().raw(); })), 16);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.areas"), 0u);  // its Vcs still name the same
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.sum_list"), 1u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.larger"), 1u);
}

TEST_F(SharedEngine, ReferencesNestedBeyondTheBoundStayLocal) {
  ASSERT_FALSE(seeds_.empty());
  constexpr int kLevels = 10;
  Machine a(seeds_, ns_, true);
  a.SetX({1});
  EXPECT_EQ(IntOf(a.Read([] { return Nested(kLevels).raw(); })), 10 + kLevels);
  // scale(0) and the levels whose names fit: level k names k levels below it.
  a.WaitPublished(1 + 8);
  EXPECT_EQ(a.engine->Stats().shared_publish_dropped, 2u);  // levels 9 and 10

  Machine b(seeds_, ns_, false);
  b.SetX({1});
  EXPECT_EQ(IntOf(b.Read([] { return Nested(kLevels).raw(); })), 10 + kLevels);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.plus_one"), 2u);
  EXPECT_EQ(ExecutionsOf(*b.engine, "shared_test.scale"), 0u);
  EXPECT_EQ(b.engine->Stats().shared_hits, 9u);
}

}  // namespace
}  // namespace turbine::testing
