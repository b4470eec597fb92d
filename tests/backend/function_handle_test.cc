// Calling by handle on an explicit engine (what a server does), structured error codes,
// Engine::Open's refusal of an unreadable store, and the injected logger.
#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "read_now.h"
#include "turbine/engine.h"

namespace {

using turbine::CallSource;
using turbine::Engine;
using turbine::FunctionHandle;
using turbine::RawVc;
using turbine::Task;
using turbine::Vc;
using turbine::testing::ReadNow;

std::atomic<int> area_runs{0};

Task<int64_t> AreaImpl(int64_t w, int64_t h) {
  ++area_runs;
  co_return w* h;
}
inline const turbine::Function<AreaImpl> area{"test.handle.area", 1, "w times h"};
inline const turbine::Function<AreaImpl> area_v2{"test.handle.area", 2, "w times h, again"};

struct Box {
  int64_t side = 0;
  bool operator==(const Box&) const = default;
  static constexpr std::string_view kTypeName = "test.handle.Box";
  static constexpr auto kFields = std::make_tuple(turbine::field("side", &Box::side));
};
Task<Box> MakeBoxImpl(int64_t side) { co_return Box{side}; }
inline const turbine::Function<MakeBoxImpl> make_box{"test.handle.make_box", 1};
Task<int64_t> VolumeImpl(Vc<Box> self) {
  const Box box = co_await self;
  co_return box.side* box.side* box.side;
}
inline const turbine::Method<VolumeImpl> volume{"test.handle.Box.volume", 1};

Task<int64_t> MissingImpl(std::string key) {
  turbine::Fail("no entry '" + key + "'", absl::StatusCode::kNotFound);
  co_return 0;  // a coroutine: the failure is the task's output, not the caller's exception
}
inline const turbine::Function<MissingImpl> missing{"test.handle.missing", 1};
Task<int64_t> ReadsMissingImpl() { co_return 1 + co_await missing("k"); }
inline const turbine::Function<ReadsMissingImpl> reads_missing{"test.handle.reads_missing", 1};
Task<int64_t> PlainFailureImpl() {
  throw std::runtime_error("broke");
  co_return 0;
}
inline const turbine::Function<PlainFailureImpl> plain_failure{"test.handle.plain_failure", 1};

TEST(FunctionHandle, DescribesTheRegisteredFunction) {
  const FunctionHandle found = FunctionHandle::Find("test.handle.area");
  ASSERT_TRUE(found.valid());
  EXPECT_EQ(found.version(), 2u) << "version 0 finds the highest";
  EXPECT_EQ(found, area_v2.handle());
  EXPECT_EQ(FunctionHandle::Find("test.handle.area", 1), area.handle());
  EXPECT_EQ(found.name(), "test.handle.area");
  EXPECT_EQ(found.description(), "w times h, again");
  EXPECT_EQ(found.param_types(), (std::vector<std::string>{"i64", "i64"}));
  EXPECT_EQ(found.result_type(), "i64");
  EXPECT_FALSE(found.has_receiver());
  EXPECT_FALSE(found.session_dependent());
  EXPECT_TRUE(volume.handle().has_receiver());
  EXPECT_FALSE(FunctionHandle::Find("test.handle.nothing").valid());
  EXPECT_FALSE(FunctionHandle::Find("test.handle.area", 3).valid());

  int listed = 0;
  for (const FunctionHandle& fn : FunctionHandle::All()) listed += fn.name() == "test.handle.area";
  EXPECT_EQ(listed, 2);
}

TEST(FunctionHandle, CallsOnTheGivenEngineAndSaysWhereTheTaskWas) {
  // No Engine::Scope: the engine is the one named, on any thread.
  Engine engine;
  area_runs = 0;
  std::tuple<int64_t, int64_t> args{6, 7};
  CallSource source = CallSource::kMemory;
  absl::StatusOr<RawVc> vc = engine.Call(area.handle(), RawVc{}, args, &source);
  ASSERT_TRUE(vc.ok()) << vc.status();
  EXPECT_EQ(source, CallSource::kCreated);
  Engine::AsyncRead read = ReadNow(engine, *vc);
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(*static_cast<const int64_t*>(read.value.get()), 42);

  absl::StatusOr<RawVc> again = engine.Call(area.handle(), RawVc{}, args, &source);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *vc);
  EXPECT_EQ(source, CallSource::kMemory);
  EXPECT_EQ(area_runs.load(), 1);

  // The same task as a direct call inside a task body would find.
  Engine::Scope scope(engine);
  EXPECT_EQ(area(6, 7).raw(), *vc);
}

TEST(FunctionHandle, CallsAMethodWithItsReceiver) {
  Engine engine;
  std::tuple<int64_t> box_args{3};
  absl::StatusOr<RawVc> box = engine.Call(make_box.handle(), RawVc{}, box_args);
  ASSERT_TRUE(box.ok());
  std::tuple<> none;
  absl::StatusOr<RawVc> vc = engine.Call(volume.handle(), *box, none);
  ASSERT_TRUE(vc.ok()) << vc.status();
  Engine::AsyncRead read = ReadNow(engine, *vc);
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(*static_cast<const int64_t*>(read.value.get()), 27);
}

TEST(FunctionHandle, AWrongCallIsAnInvalidArgumentNotACrash) {
  Engine engine;
  std::tuple<int64_t, int64_t> two{1, 2};
  std::tuple<int64_t> one{1};
  std::tuple<int64_t, std::string> other_types{1, "x"};
  EXPECT_EQ(engine.Call(FunctionHandle(), RawVc{}, two).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.Call(area.handle(), RawVc{}, one).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.Call(area.handle(), RawVc{}, other_types).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::tuple<> none;
  EXPECT_EQ(engine.Call(volume.handle(), RawVc{}, none).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "a method needs its receiver";
  absl::StatusOr<RawVc> box = engine.Call(make_box.handle(), RawVc{}, one);
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(engine.Call(area.handle(), *box, two).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "a function takes no receiver";
}

TEST(ErrorCodes, AFunctionsCodeReachesItsReadersAndTheirReaders) {
  Engine engine;
  Engine::Scope scope(engine);
  absl::StatusOr<int64_t> direct = engine.Read(missing("k"));
  EXPECT_EQ(direct.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(direct.status().message(), "no entry 'k'");
  // Rethrown inside the reader with the same code, and not caught there.
  EXPECT_EQ(engine.Read(reads_missing()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadNow(engine, missing("k").raw()).status.code(), absl::StatusCode::kNotFound);
  // Any other exception is the function's own failure: UNKNOWN.
  absl::StatusOr<int64_t> plain = engine.Read(plain_failure());
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(plain.status().message(), "broke");
}

// UnreadableStore fails every read, as a store on a broken disk would.
class UnreadableStore : public turbine::BackingStore {
 public:
  absl::StatusOr<std::optional<turbine::StoredTask>> FindTask(uint64_t, std::string_view) override {
    return Broken();
  }
  absl::StatusOr<std::optional<turbine::StoredTask>> ReadTask(uint64_t) override {
    return Broken();
  }
  absl::Status WriteSnapshot(const std::vector<turbine::StoredTask>&, uint64_t, uint64_t) override {
    return Broken();
  }
  absl::StatusOr<uint64_t> NextTaskId() override { return Broken(); }
  absl::StatusOr<std::optional<turbine::StoredInput>> ReadInput(std::string_view) override {
    return Broken();
  }
  absl::Status WriteInputs(const std::vector<std::pair<std::string, turbine::StoredInput>>&,
                           uint64_t) override {
    return Broken();
  }
  absl::StatusOr<uint64_t> NextStamp() override { return Broken(); }

 private:
  static absl::Status Broken() { return absl::UnavailableError("input/output error"); }
};

TEST(EngineOpen, AnUnreadableStoreIsAnErrorNeverAMemoryOnlyEngine) {
  UnreadableStore store;
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open({.backing_store = &store});
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(engine.status().message().find("input/output error"), std::string::npos)
      << engine.status();
  // Without a store there is nothing to fail.
  EXPECT_TRUE(Engine::Open({}).ok());
}

// FailingSnapshots reads like an empty store and fails every snapshot.
class FailingSnapshots : public UnreadableStore {
 public:
  absl::StatusOr<uint64_t> NextTaskId() override { return uint64_t{1}; }
  absl::StatusOr<uint64_t> NextStamp() override { return uint64_t{1}; }
  absl::StatusOr<std::optional<turbine::StoredTask>> FindTask(uint64_t, std::string_view) override {
    return std::nullopt;
  }
};

// CapturedLog is an engine logger that keeps what it is told.
class CapturedLog {
 public:
  std::function<void(turbine::LogLevel, std::string_view)> Logger() {
    return [this](turbine::LogLevel level, std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(level, message);
    };
  }
  // Errors gives the error lines so far.
  std::vector<std::string> Errors() {
    std::lock_guard lock(mu_);
    std::vector<std::string> errors;
    for (const auto& [level, line] : lines_) {
      if (level == turbine::LogLevel::kError) errors.push_back(line);
    }
    return errors;
  }
  // WaitFor waits (up to 20 s) until a line holding `part` was logged `times` times.
  bool WaitFor(std::string_view part, long times = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (Count(part) < times && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Count(part) >= times;
  }

 private:
  long Count(std::string_view part) {
    std::lock_guard lock(mu_);
    return std::count_if(lines_.begin(), lines_.end(), [&](const auto& entry) {
      return entry.second.find(part) != std::string::npos;
    });
  }

  std::mutex mu_;
  std::vector<std::pair<turbine::LogLevel, std::string>> lines_;
};

// OpenSnapshotting opens an engine on `store` that snapshots every 10 ms and logs to `log`.
absl::StatusOr<std::unique_ptr<Engine>> OpenSnapshotting(turbine::BackingStore& store,
                                                         CapturedLog& log) {
  return Engine::Open({.worker_threads = 1,
                       .backing_store = &store,
                       .snapshot_interval = std::chrono::milliseconds(10),
                       .logger = log.Logger()});
}

TEST(EngineLogger, BackgroundErrorsGoToTheInjectedLogger) {
  FailingSnapshots store;
  CapturedLog log;
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenSnapshotting(store, log);
  ASSERT_TRUE(engine.ok()) << engine.status();
  {
    Engine::Scope scope(**engine);
    ASSERT_EQ(*(*engine)->Read(area(2, 3)), 6);
  }
  log.WaitFor("snapshot failed");
  const std::vector<std::string> errors = log.Errors();
  ASSERT_FALSE(errors.empty()) << "the failed background snapshot was not reported";
  EXPECT_NE(errors.front().find("snapshot failed"), std::string::npos) << errors.front();
  EXPECT_NE(errors.front().find("input/output error"), std::string::npos) << errors.front();
}

// SometimesFailingSnapshots fails snapshots while `failing` is set.
class SometimesFailingSnapshots : public FailingSnapshots {
 public:
  std::atomic<bool> failing{true};
  absl::Status WriteSnapshot(const std::vector<turbine::StoredTask>&, uint64_t,
                             uint64_t) override {
    if (failing.load()) return absl::UnavailableError("input/output error");
    return absl::OkStatus();
  }
};

// Snapshots that fail are said once, and their recovery once, even when what recovered
// them was another flush (the Flush RPC): then the next failure is said again. Before, a
// backlog written by Flush left the loop believing snapshots still failed: it never said
// they succeeded, and said nothing of the next outage (found by a black-box run).
TEST(EngineLogger, SnapshotsRecoveredByAFlushAreSaidToSucceedAndFailAgain) {
  SometimesFailingSnapshots store;
  CapturedLog log;
  absl::StatusOr<std::unique_ptr<Engine>> engine = OpenSnapshotting(store, log);
  ASSERT_TRUE(engine.ok()) << engine.status();
  Engine::Scope scope(**engine);
  ASSERT_EQ(*(*engine)->Read(area(2, 3)), 6);
  ASSERT_TRUE(log.WaitFor("snapshot failed", 1));
  store.failing.store(false);
  ASSERT_TRUE((*engine)->Flush().ok());
  EXPECT_TRUE(log.WaitFor("snapshots succeed again", 1));
  store.failing.store(true);
  ASSERT_EQ(*(*engine)->Read(area(4, 5)), 20);
  EXPECT_TRUE(log.WaitFor("snapshot failed", 2));
}

}  // namespace
