// A pass asked for gives back the space of what background passes removed and left to
// RocksDB's own compactions, on a real RocksDB directory (turbine/gc.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "gc_fixture.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace {

using turbine::GcOptions;
using turbine::GcReport;
using turbine::Input;
using turbine::Task;
using turbine::TaskId;
using turbine::Vc;
using turbine::testing::gc::Collect;
using turbine::testing::gc::Daemon;

// Noise(key, version): 64 KiB that do not compress, kept only while something refers to
// it (like fs.content); CurrentNoise(key) names the version an input says.
Task<std::string> NoiseImpl(std::string key, int64_t version) {
  std::string bytes(64 << 10, '\0');
  uint64_t x =
      std::hash<std::string>()(key) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(version);
  for (char& c : bytes) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  co_return bytes;
}
inline const turbine::Function<NoiseImpl> noise{
    "test.gc.noise", 1, "", {.kept_while_referenced = true}};
Task<Vc<std::string>> CurrentNoiseImpl(std::string key) {
  co_return noise(key, co_await Input<int64_t>("noise:" + key));
}
inline const turbine::Function<CurrentNoiseImpl> current_noise{"test.gc.current_noise", 1};

// A background pass leaves a small harvest to RocksDB's own compactions; a pass asked for
// afterwards removes nothing itself, yet it promises the space back, so it compacts what the
// background passes removed. Before, it only wrote out the memtables: `du` kept the dead
// records until RocksDB got to them.
TEST(GarbageCollection, APassAskedForReclaimsWhatBackgroundPassesRemoved) {
  turbine::testing::TempDir dir;
  constexpr int kKeys = 60;
  {
    Daemon d(dir.str(), std::chrono::milliseconds(0));
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "k" + std::to_string(i);
      ASSERT_TRUE(d.engine.SetInput("noise:" + key, int64_t{1}).ok());
      ASSERT_EQ((*d.engine.Read(current_noise(key))).size(), size_t{64} << 10);
    }
    // Two keys move on: their first versions are superseded, under a tenth of the store.
    for (int i = 0; i < 2; ++i) {
      const std::string key = "k" + std::to_string(i);
      ASSERT_TRUE(d.engine.SetInput("noise:" + key, int64_t{2}).ok());
      ASSERT_EQ((*d.engine.Read(current_noise(key))).size(), size_t{64} << 10);
    }
    ASSERT_TRUE(d.engine.Flush().ok());
    // The store as compactions leave it, so that what changes below is the removal alone.
    EXPECT_EQ(
        Collect(d.engine, GcOptions{.also_collect = [](TaskId) { return false; }}).removed_tasks,
        2u);
  }
  // Again, with background passes this time: two more versions superseded.
  Daemon d(dir.str(), turbine::EngineOptions{.worker_threads = 2,
                                             .snapshot_interval = std::chrono::milliseconds(20),
                                             .gc = {.interval = std::chrono::milliseconds(50)}});
  for (int i = 2; i < 4; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(d.engine.SetInput("noise:" + key, int64_t{2}).ok());
    ASSERT_EQ((*d.engine.Read(current_noise(key))).size(), size_t{64} << 10);
  }
  ASSERT_TRUE(d.engine.Flush().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (d.engine.Stats().gc_removed_tasks < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(d.engine.Stats().gc_removed_tasks, 2u) << "no background pass removed them";
  const GcReport asked = Collect(d.engine, GcOptions{});
  EXPECT_EQ(asked.removed_tasks, 0u);
  // Two records of 64 KiB that do not compress are gone from the disk.
  EXPECT_GE(asked.bytes_before, asked.bytes_after + (size_t{100} << 10))
      << asked.bytes_before << " -> " << asked.bytes_after;
}

}  // namespace
