// Observations (turbine/observe.h): a session-dependent result that says what it observed
// is checked at open, in bulk, and trusted with everything that follows from it when the
// observation still holds; a change while down, or in the session, reaches what it must.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../backend/counting.h"
#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/gc.h"
#include "turbine/observe.h"

namespace {

using turbine::Invalidator;
using turbine::testing::Executions;
using turbine::Task;

// The outside world: values the engine cannot see change, with the subscriptions a
// watcher would keep.
std::mutex world_mu;
std::map<std::string, int64_t> world;
std::map<std::string, std::vector<Invalidator>> watchers;

void SetWorld(const std::string& key, int64_t value) {
  std::lock_guard lock(world_mu);
  world[key] = value;
}
std::optional<int64_t> Look(const std::string& key, const Invalidator& invalidator) {
  std::lock_guard lock(world_mu);
  watchers[key].push_back(invalidator);  // subscribe, then look
  auto found = world.find(key);
  if (found == world.end()) return std::nullopt;
  return found->second;
}
// Changes `key` as a watched file changes: the world first, then the subscribers fire.
void ChangeWorld(const std::string& key, int64_t value) {
  std::vector<Invalidator> fired;
  {
    std::lock_guard lock(world_mu);
    world[key] = value;
    fired = std::exchange(watchers[key], {});
  }
  Invalidator::InvalidateAll(fired);
}

// The kind's two steps, as a watcher and a look would be.
void WatchWorld(const std::string& key, const Invalidator& invalidator) {
  std::lock_guard lock(world_mu);
  watchers[key].push_back(invalidator);
}
std::optional<uint64_t> LookAtWorld(const std::string& key, const Invalidator&) {
  std::lock_guard lock(world_mu);
  auto found = world.find(key);
  if (found == world.end()) return std::nullopt;
  return static_cast<uint64_t>(found->second);
}
const turbine::ObservationKind world_kind{"test.world", WatchWorld, LookAtWorld};

Task<int64_t> ObservedImpl(std::string key) {
  const std::optional<int64_t> value = Look(key, turbine::CurrentInvalidator());
  if (!value.has_value()) turbine::Fail("no " + key);
  turbine::Observe("test.world", key, static_cast<uint64_t>(*value));
  co_return *value;
}
inline const turbine::Function<ObservedImpl> observed{
    "test.observed.value", 1, "a value of the world", {.session_dependent = true}};

Task<int64_t> DoubledImpl(std::string key) { co_return 2 * (co_await observed(key)); }
inline const turbine::Function<DoubledImpl> doubled{"test.observed.doubled", 1};
Task<int64_t> TripledImpl(std::string key) { co_return 3 * (co_await observed(key)); }
inline const turbine::Function<TripledImpl> tripled{"test.observed.tripled", 1};

// Observes two things in one execution: what it follows from cannot be checked as one.
Task<int64_t> SumOfTwoImpl(std::string a, std::string b) {
  const Invalidator invalidator = turbine::CurrentInvalidator();
  const int64_t x = Look(a, invalidator).value_or(0);
  const int64_t y = Look(b, invalidator).value_or(0);
  turbine::Observe("test.world", a, static_cast<uint64_t>(x));
  turbine::Observe("test.world", b, static_cast<uint64_t>(y));
  co_return x + y;
}
inline const turbine::Function<SumOfTwoImpl> sum_of_two{
    "test.observed.sum_of_two", 1, "two values of the world", {.session_dependent = true}};

Task<int64_t> NotSessionDependentImpl() {
  turbine::Observe("test.world", "a", 1);
  co_return 1;
}
inline const turbine::Function<NotSessionDependentImpl> not_session_dependent{
    "test.observed.not_session_dependent", 1};

using Daemon = turbine::testing::PersistedEngine<>;

TEST(ObservedRestore, AnObservationThatHoldsIsTrustedWithWhatFollowsFromIt) {
  turbine::testing::TempDir dir;
  SetWorld("a", 21);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("a")), 42);
  }
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_checked, 1u);
  EXPECT_EQ(d.engine.Stats().observations_changed, 0u);
  EXPECT_EQ(*d.engine.Read(doubled("a")), 42);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);  // doubled; observed not loaded
  EXPECT_EQ(*d.engine.Read(observed("a")), 21);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 2u);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
}

TEST(ObservedRestore, AChangeWhileDownIsSeen) {
  turbine::testing::TempDir dir;
  SetWorld("a", 21);
  SetWorld("b", 1);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("a")), 42);
    ASSERT_EQ(*d.engine.Read(doubled("b")), 2);
  }
  SetWorld("a", 5);
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_checked, 2u);
  EXPECT_EQ(d.engine.Stats().observations_changed, 1u);
  EXPECT_EQ(*d.engine.Read(doubled("a")), 10);
  EXPECT_EQ(*d.engine.Read(doubled("b")), 2);
}

// Changes found at one check share a stamp; each reaches what follows from it, though no
// result's summary has the bits of all of them.
TEST(ObservedRestore, ManyChangesWhileDownEachReachWhatFollowsFromThem) {
  turbine::testing::TempDir dir;
  constexpr int kKeys = 20;
  const auto key = [](int i) { return "many-" + std::to_string(i); };
  for (int i = 0; i < kKeys; ++i) SetWorld(key(i), i);
  {
    Daemon d(dir.str());
    for (int i = 0; i < kKeys; ++i) ASSERT_EQ(*d.engine.Read(doubled(key(i))), 2 * i);
  }
  for (int i = 0; i < kKeys; ++i) SetWorld(key(i), 100 + i);
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_changed, static_cast<uint64_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(*d.engine.Read(doubled(key(i))), 200 + 2 * i) << i;
}

TEST(ObservedRestore, AnObservationGoneWhileDownIsAChange) {
  turbine::testing::TempDir dir;
  SetWorld("gone", 7);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("gone")), 14);
  }
  {
    std::lock_guard lock(world_mu);
    world.erase("gone");
  }
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_changed, 1u);
  EXPECT_FALSE(d.engine.Read(doubled("gone")).ok());
}

TEST(ObservedRestore, AChangeInTheSessionReachesTrustedResults) {
  // Nothing executed observed("c") in this session: only the check at open subscribed it.
  turbine::testing::TempDir dir;
  SetWorld("c", 1);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("c")), 2);
  }
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(doubled("c")), 2);
  ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  ChangeWorld("c", 4);
  EXPECT_EQ(*d.engine.Read(doubled("c")), 8);
}

// A poll (Invalidator::RecheckAll) looks at each subject again: one that holds is
// subscribed again and changes nothing, one that changed is invalidated as a watcher would.
TEST(ObservedRestore, ARecheckInvalidatesOnlyWhatChanged) {
  turbine::testing::TempDir dir;
  SetWorld("poll-same", 21);
  SetWorld("poll-moved", 1);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("poll-same")), 42);
    ASSERT_EQ(*d.engine.Read(doubled("poll-moved")), 2);
  }
  {
    std::lock_guard lock(world_mu);  // the first session's: their engine is gone
    watchers.erase("poll-same");
    watchers.erase("poll-moved");
  }
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(doubled("poll-same")), 42);
  ASSERT_EQ(*d.engine.Read(doubled("poll-moved")), 2);
  ASSERT_EQ(d.engine.Stats().executions, 0u);
  std::vector<Invalidator> polled;
  {
    std::lock_guard lock(world_mu);
    world["poll-moved"] = 3;  // changed where no watcher hears it
    for (const char* key : {"poll-same", "poll-moved"}) {
      for (Invalidator& invalidator : std::exchange(watchers[key], {})) polled.push_back(invalidator);
    }
  }
  ASSERT_EQ(polled.size(), 2u);  // the check at open subscribed both
  Invalidator::RecheckAll(polled);
  {
    std::lock_guard lock(world_mu);
    EXPECT_EQ(watchers["poll-same"].size(), 1u);  // subscribed again by the recheck
  }
  EXPECT_EQ(*d.engine.Read(doubled("poll-moved")), 6);
  EXPECT_EQ(*d.engine.Read(doubled("poll-same")), 42);
  EXPECT_EQ(Executions(d.engine, "test.observed.value"), 1u);  // poll-moved's alone
  EXPECT_EQ(Executions(d.engine, "test.observed.doubled"), 1u);
}

// A task invalidated (its observation doubted) whose polled subscription a recheck takes
// is subscribed again, though not looked at: it may be executing, and the subscription
// the poll took was the one that execution made. Skipped, it was never polled again.
TEST(ObservedRestore, ARecheckOfADoubtedTaskSubscribesItAgain) {
  turbine::testing::TempDir dir;
  SetWorld("doubted", 1);
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(doubled("doubted")), 2);
  std::vector<Invalidator> polled;
  {
    std::lock_guard lock(world_mu);
    polled = std::exchange(watchers["doubted"], {});
  }
  ASSERT_EQ(polled.size(), 1u);  // the body's
  Invalidator::InvalidateAll(polled);  // doubted from now until it executes again
  Invalidator::RecheckAll(polled);
  {
    std::lock_guard lock(world_mu);
    EXPECT_EQ(watchers["doubted"].size(), 1u);
  }
  SetWorld("doubted", 5);
  EXPECT_EQ(*d.engine.Read(doubled("doubted")), 10);
}

TEST(ObservedRestore, ARecordThatFollowsFromAChangedObservationIsNeverStoredBeforeTheChange) {
  // The observing task executes again with the new observation and is stored; a reader of
  // it that was not read again keeps its old record on disk. At the next open the
  // observation holds (it is the new one), so only the logged change can tell that the
  // reader's record is older than it.
  turbine::testing::TempDir dir;
  SetWorld("d", 1);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("d")), 2);
    ASSERT_EQ(*d.engine.Read(tripled("d")), 3);
  }
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(tripled("d")), 3);  // trusted
    ChangeWorld("d", 10);
    ASSERT_EQ(*d.engine.Read(observed("d")), 10);  // stored anew; doubled is not read
    ASSERT_TRUE(d.engine.Flush().ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_changed, 0u);
  EXPECT_EQ(*d.engine.Read(doubled("d")), 20);
  EXPECT_EQ(*d.engine.Read(tripled("d")), 30);
}

TEST(ObservedRestore, AnObservationThatGarbageCollectionRemovedIsAChangeAtTheNextOpen) {
  // Nothing checks a removed observation at the next open; a result that followed from it
  // and stayed stored must not be trusted then, whatever the world did meanwhile.
  turbine::testing::TempDir dir;
  SetWorld("g", 1);
  turbine::TaskId observer = turbine::kNoTask;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("g")), 2);
    observer = observed("g").raw().task;
  }
  {
    Daemon d(dir.str());  // the observer is not loaded: only the store has it
    turbine::GcOptions options;
    options.also_collect = [observer](turbine::TaskId id) { return id == observer; };
    absl::StatusOr<turbine::GcReport> report = d.engine.CollectGarbage(options);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_EQ(report->removed_tasks, 1u);
  }
  SetWorld("g", 5);
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_checked, 0u);
  EXPECT_EQ(*d.engine.Read(doubled("g")), 10);
}

TEST(ObservedRestore, AnObservationAndItsChangeSurviveAnyNumberOfRestarts) {
  turbine::testing::TempDir dir;
  SetWorld("e", 2);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("e")), 4);
  }
  for (int restart = 0; restart < 3; ++restart) {
    Daemon d(dir.str());
    EXPECT_EQ(*d.engine.Read(doubled("e")), 4);
    EXPECT_EQ(d.engine.Stats().executions, 0u) << restart;
  }
  SetWorld("e", 3);
  {
    Daemon d(dir.str());
    EXPECT_EQ(*d.engine.Read(doubled("e")), 6);
    EXPECT_EQ(d.engine.Stats().executions, 2u);
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(doubled("e")), 6);
  EXPECT_EQ(d.engine.Stats().executions, 0u);  // trusted again
}

TEST(ObservedRestore, TwoObservationsInOneExecutionAreVerifiedAfterARestart) {
  turbine::testing::TempDir dir;
  SetWorld("x", 1);
  SetWorld("y", 2);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(sum_of_two("x", "y")), 3);
  }
  SetWorld("y", 5);
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_checked, 0u);
  EXPECT_EQ(*d.engine.Read(sum_of_two("x", "y")), 6);
  EXPECT_EQ(Executions(d.engine, "test.observed.sum_of_two"), 1u);
}

// Grouped observes a value of the world in the group "grouped" (the group of a file's
// observation is its directory): a change of any of the group is told apart from the
// others only by the check at open, not by input summaries, where they share every bit.
// Plus_input adds an input to it.
int64_t LookGrouped(const std::string& key) {
  const std::optional<int64_t> value = Look(key, turbine::CurrentInvalidator());
  if (!value.has_value()) turbine::Fail("no " + key);
  turbine::Observe("test.world", key, static_cast<uint64_t>(*value), "grouped");
  return *value;
}
Task<int64_t> GroupedImpl(std::string key) { co_return LookGrouped(key); }
inline const turbine::Function<GroupedImpl> grouped{
    "test.observed.grouped", 1, "a value of the world, in a group", {.session_dependent = true}};
Task<int64_t> GroupedPlusInputImpl(std::string key) {
  const int64_t value = LookGrouped(key);
  co_return value + co_await turbine::Input<int64_t>("observed.added");
}
inline const turbine::Function<GroupedPlusInputImpl> grouped_plus_input{
    "test.observed.grouped_plus_input", 1, "a value of the world plus an input",
    {.session_dependent = true}};

// StoreGroupedPair sets two values of the world and stores grouped() of each.
void StoreGroupedPair(const std::string& dir, const std::string& a, int64_t a_value,
                      const std::string& b, int64_t b_value) {
  SetWorld(a, a_value);
  SetWorld(b, b_value);
  Daemon d(dir);
  ASSERT_EQ(*d.engine.Read(grouped(a)), a_value);
  ASSERT_EQ(*d.engine.Read(grouped(b)), b_value);
}

TEST(ObservedRestore, AnObservationThatHoldsIsNotLookedAtAgainWhenAnotherOfItsGroupChanged) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreGroupedPair(dir.str(), "g1", 1, "g2", 2));
  SetWorld("g2", 3);
  {
    Daemon d(dir.str());
    ASSERT_EQ(d.engine.Stats().observations_changed, 1u);
    EXPECT_EQ(*d.engine.Read(grouped("g1")), 1);
    EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 0u);  // the group's bits changed
    EXPECT_EQ(d.engine.Stats().executions, 0u);              // verified: it read nothing
    EXPECT_EQ(*d.engine.Read(grouped("g2")), 3);
    EXPECT_EQ(d.engine.Stats().executions, 1u);
  }
  // Verified, it was stored again with its observation: trusted at the next open.
  Daemon d(dir.str());
  EXPECT_EQ(d.engine.Stats().observations_checked, 2u);
  EXPECT_EQ(*d.engine.Read(grouped("g1")), 1);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
}

TEST(ObservedRestore, AChangeInTheSessionOfAnObservationNotInMemoryIsSeenWhenItIsRestored) {
  // The check at open found both to hold; then g4 changes while its task is on disk only.
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreGroupedPair(dir.str(), "g3", 1, "g4", 2));
  Daemon d(dir.str());
  ASSERT_EQ(d.engine.Stats().observations_changed, 0u);
  ChangeWorld("g4", 5);
  EXPECT_EQ(*d.engine.Read(grouped("g4")), 5);
  EXPECT_EQ(d.engine.Stats().executions, 1u);
  EXPECT_EQ(*d.engine.Read(grouped("g3")), 1);
  EXPECT_EQ(d.engine.Stats().executions, 1u);
}

// InGroup observes a value of the world in group `group`. Picked reads "pick" (in group
// "choice") and then the value it names (in group "picked"): a deleted file's task, whose
// directory is read again without it.
Task<int64_t> InGroupImpl(std::string group, std::string key) {
  const std::optional<int64_t> value = Look(key, turbine::CurrentInvalidator());
  if (!value.has_value()) turbine::Fail("no " + key);
  turbine::Observe("test.world", key, static_cast<uint64_t>(*value), group);
  co_return *value;
}
inline const turbine::Function<InGroupImpl> in_group{
    "test.observed.in_group", 1, "a value of the world, in a group", {.session_dependent = true}};
Task<int64_t> PickedImpl() {
  const int64_t pick = co_await in_group("choice", "pick");
  co_return co_await in_group("picked", pick == 1 ? "first" : "second");
}
inline const turbine::Function<PickedImpl> picked{"test.observed.picked", 1};
Task<int64_t> PickedTwiceImpl(std::string key) {
  co_return 2 * (co_await in_group("picked", key));
}
inline const turbine::Function<PickedTwiceImpl> picked_twice{"test.observed.picked_twice", 1};

TEST(ObservedRestore, AChangedObservationThatNothingReadsAgainIsAChangeAtOneOpenOnly) {
  // "first" changes in the session and its task is never read again: nothing looks at it,
  // so only the snapshot can say it changed. It must, once: its stored reader
  // picked_twice() must not be trusted, and neither may it count as changed at every open, making every
  // reader of its group verify (the group of a file's observation is its directory).
  turbine::testing::TempDir dir;
  SetWorld("pick", 1);
  SetWorld("first", 10);
  SetWorld("second", 20);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(picked()), 10);
    ASSERT_EQ(*d.engine.Read(picked_twice("first")), 20);
  }
  {
    Daemon d(dir.str());
    ASSERT_EQ(d.engine.Stats().observations_changed, 0u);
    ChangeWorld("first", 11);
    ChangeWorld("pick", 2);
    ASSERT_EQ(*d.engine.Read(picked()), 20);  // reads "second" now, no longer "first"
  }
  for (int open = 0; open < 2; ++open) {
    Daemon d(dir.str());
    EXPECT_EQ(d.engine.Stats().observations_changed, 0u) << open;
    EXPECT_EQ(*d.engine.Read(picked()), 20) << open;
    EXPECT_EQ(d.engine.Stats().executions, 0u) << open;
    EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u) << open;
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(picked_twice("first")), 22);  // its stored record is older
}

TEST(ObservedRestore, AnObservationThatHoldsStillExecutesWhenWhatItReadChanged) {
  turbine::testing::TempDir dir;
  SetWorld("g5", 10);
  SetWorld("g6", 20);
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("observed.added", int64_t{1}).ok());
    ASSERT_EQ(*d.engine.Read(grouped_plus_input("g5")), 11);
    ASSERT_EQ(*d.engine.Read(grouped("g6")), 20);
  }
  SetWorld("g6", 21);  // the group changed, so g5's task is not trusted: it verifies
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("observed.added", int64_t{2}).ok());
    EXPECT_EQ(*d.engine.Read(grouped_plus_input("g5")), 12);
    EXPECT_EQ(d.engine.Stats().executions, 1u);
  }
}

TEST(ObservedRestore, OnlyASessionDependentFunctionMayObserve) {
  turbine::testing::TempDir dir;
  Daemon d(dir.str());
  absl::StatusOr<int64_t> result = d.engine.Read(not_session_dependent());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("session-dependent"), std::string::npos)
      << result.status();
}

// Coarse observes a value of the world and answers a tenth of it; while `coarse_racy`, it
// does not observe (as fs.read does not for a file changed within the last second).
bool coarse_racy = false;
Task<int64_t> CoarseImpl(std::string key) {
  const std::optional<int64_t> value = Look(key, turbine::CurrentInvalidator());
  if (!value.has_value()) turbine::Fail("no " + key);
  if (!coarse_racy) turbine::Observe("test.world", key, static_cast<uint64_t>(*value));
  co_return *value / 10;
}
inline const turbine::Function<CoarseImpl> coarse{
    "test.observed.coarse", 1, "a tenth of a value of the world", {.session_dependent = true}};
Task<int64_t> CoarsePlusImpl(std::string key) { co_return 1 + (co_await coarse(key)); }
inline const turbine::Function<CoarsePlusImpl> coarse_plus{"test.observed.coarse_plus", 1};
Task<int64_t> CoarsePlusTwoImpl(std::string key) { co_return 1 + (co_await coarse_plus(key)); }
inline const turbine::Function<CoarsePlusTwoImpl> coarse_plus_two{"test.observed.coarse_plus_two",
                                                                 1};

TEST(ObservedRestore, ATaskThatStopsObservingMakesItsReadersVerifyAfterARestart) {
  // coarse executes again without observing and answers the same: coarse_plus verifies
  // unchanged, and must learn that it now reads the world unobserved, or a reader stored
  // after it (coarse_plus_two) would be trusted with nothing checked at the next open.
  turbine::testing::TempDir dir;
  coarse_racy = false;
  SetWorld("s", 20);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(coarse_plus("s")), 3);
    coarse_racy = true;
    ChangeWorld("s", 21);
    ASSERT_EQ(*d.engine.Read(coarse_plus("s")), 3);
    ASSERT_EQ(*d.engine.Read(coarse_plus_two("s")), 4);
  }
  coarse_racy = false;
  SetWorld("s", 50);
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(coarse_plus_two("s")), 7);
}

Task<int64_t> DoubledPlusOneImpl(std::string key) { co_return 1 + (co_await doubled(key)); }
inline const turbine::Function<DoubledPlusOneImpl> doubled_plus_one{
    "test.observed.doubled_plus_one", 1};

TEST(ObservedRestore, AnObservationCollectedInTheSessionReachesItsTrustedReaders) {
  // doubled stays trusted over the collected observation unless the collection reaches
  // it; a new reader of it is then stored clean as of after the logged change, with
  // nothing to check at the next open.
  turbine::testing::TempDir dir;
  SetWorld("h", 1);
  turbine::TaskId observer = turbine::kNoTask;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("h")), 2);
    observer = observed("h").raw().task;
  }
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("h")), 2);  // trusted; the observer is not loaded
    ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
    turbine::GcOptions options;
    options.also_collect = [observer](turbine::TaskId id) { return id == observer; };
    absl::StatusOr<turbine::GcReport> report = d.engine.CollectGarbage(options);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_EQ(report->removed_tasks, 1u);
    ASSERT_EQ(*d.engine.Read(doubled_plus_one("h")), 3);  // stored after the change
  }
  SetWorld("h", 5);
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(doubled_plus_one("h")), 11);
  EXPECT_EQ(*d.engine.Read(doubled("h")), 10);
}

// UnreadableObservations is a store whose observations cannot be read.
struct UnreadableObservations : turbine::storage::RocksBackingStore {
  using RocksBackingStore::RocksBackingStore;
  absl::StatusOr<std::vector<turbine::StoredObservation>> ReadObservations() override {
    return absl::DataLossError("damaged");
  }
};

TEST(ObservedRestore, ObservationsThatCannotBeReadTrustNothingThatFollowsFromThem) {
  turbine::testing::TempDir dir;
  SetWorld("u", 1);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("u")), 2);
  }
  SetWorld("u", 4);
  turbine::testing::PersistedEngine<UnreadableObservations> d(dir.str());
  EXPECT_EQ(*d.engine.Read(doubled("u")), 8);
}

// FailingFromTask is a store whose writes all fail from the first snapshot write that holds
// task `fails_at` on: a crash between two chunks of a snapshot.
struct FailingFromTask : turbine::storage::RocksBackingStore {
  using RocksBackingStore::RocksBackingStore;
  absl::Status WriteSnapshot(const std::vector<turbine::StoredTask>& tasks, uint64_t next_id,
                             uint64_t next_stamp) override {
    {
      std::lock_guard lock(mu);
      for (const turbine::StoredTask& task : tasks) failed = failed || task.id == fails_at;
      if (failed) return absl::UnavailableError("crashed");
    }
    return RocksBackingStore::WriteSnapshot(tasks, next_id, next_stamp);
  }
  absl::Status LogInputChanges(const std::vector<turbine::InputChange>& changes,
                               const std::vector<turbine::StoredObservation>& observations,
                               uint64_t next_stamp) override {
    if (Failed()) return absl::UnavailableError("crashed");
    return RocksBackingStore::LogInputChanges(changes, observations, next_stamp);
  }
  absl::Status WriteLastUse(const std::vector<turbine::LastUse>& uses) override {
    if (Failed()) return absl::UnavailableError("crashed");
    return RocksBackingStore::WriteLastUse(uses);
  }
  bool Failed() {
    std::lock_guard lock(mu);
    return failed;
  }
  std::mutex mu;
  bool failed = false;
  turbine::TaskId fails_at = turbine::kNoTask;
};

Task<turbine::Vc<int64_t>> TripledVcImpl(std::string key) { co_return tripled(key); }
inline const turbine::Function<TripledVcImpl> tripled_vc{"test.observed.tripled_vc", 1};

// CrashAfterAReaderAheadOfItsObserver: observed(key) changes in the session (1 to 2) and
// looks again; a reader of it reaches the disk in the chunk before its own (tripled_vc
// refers to tripled, which goes with it), and the process dies before the observing
// task's chunk. One worker: the chunks' order is the same at every run.
void CrashAfterAReaderAheadOfItsObserver(const std::string& dir, const std::string& key) {
  SetWorld(key, 1);
  turbine::testing::PersistedEngine<FailingFromTask> d(
      dir, turbine::EngineOptions{.worker_threads = 1,
                                  .snapshot_interval = std::chrono::milliseconds(0),
                                  .snapshot_chunk_tasks = 1,
                                  .gc = {.interval = {}}});
  ASSERT_EQ(*d.engine.Read(doubled(key)), 2);
  ASSERT_TRUE(d.engine.Flush().ok());
  ChangeWorld(key, 2);
  ASSERT_TRUE(d.engine.Flush().ok());
  ASSERT_EQ(*d.engine.Read(tripled_vc(key)), 6);
  {
    std::lock_guard lock(d.backing().mu);
    d.backing().fails_at = observed(key).raw().task;
  }
  EXPECT_FALSE(d.engine.Flush().ok());
}

TEST(ObservedRestore, AReaderStoredBeforeItsObservingTaskIsNotTrustedAfterACrash) {
  // The stored observation must not be forgotten in the session: a snapshot that did would
  // have left the reader trusted, and stale.
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CrashAfterAReaderAheadOfItsObserver(dir.str(), "rw"));
  SetWorld("rw", 7);  // while down
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(tripled("rw")), 21);
}

TEST(ObservedRestore, AReaderStoredBeforeItsObservingTaskIsNotTrustedWhenTheWorldComesBack) {
  // The world goes back while down to what the old observation saw (a file made and
  // removed again: a missing path's fingerprint recurs, and so do a listing's names). The
  // old observation would hold: the stored one must say changed (a marker).
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(CrashAfterAReaderAheadOfItsObserver(dir.str(), "aba"));
  SetWorld("aba", 1);
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(tripled("aba")), 3);
}

}  // namespace
