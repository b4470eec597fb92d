// Garbage collection and the store's size with the real turbined and the real CLI: old
// versions of a rewritten file leave the disk, a daemon killed in the middle of a pass
// keeps every acknowledged input and answers right after a restart, passes run by
// themselves when the daemon is idle, and idle restarts do not grow the store.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "connect_to.h"
#include "daemon_process.h"
#include "stored_tasks.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

namespace fs = std::filesystem;
using turbine::client::CallResult;
using turbine::client::Client;
using turbine::client::Int;
using turbine::client::MakeCallRequest;
using turbine::client::Str;
using turbine::testing::CliResult;
using turbine::testing::ConnectTo;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::StoredTasksOf;
using turbine::testing::TempDir;

// GcJson is what `turbine gc --json` printed.
struct GcJson {
  uint64_t removed_tasks = 0, bytes_before = 0, bytes_after = 0;
};
bool ParseGcJson(const std::string& out, GcJson* gc) {
  std::smatch match;
  if (!std::regex_match(out, match,
                        std::regex(R"(\{"removed_tasks":(\d+),"bytes_before":(\d+),)"
                                   R"("bytes_after":(\d+)\}\n)"))) {
    return false;
  }
  gc->removed_tasks = std::stoull(match[1]);
  gc->bytes_before = std::stoull(match[2]);
  gc->bytes_after = std::stoull(match[3]);
  return true;
}

// DirectoryBytes is what `du` counts for the files of `dir`; FileCount how many there are.
uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return bytes;
}
size_t FileCount(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// WriteText writes 1.5 MB of lines that do not compress; returns how many lines.
int64_t WriteText(const std::string& path, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string text;
  int64_t lines = 0;
  while (text.size() < (3u << 19)) {
    for (int i = 0; i < 63; ++i) text += static_cast<char>('!' + random() % 90);
    text += '\n';
    ++lines;
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return lines;
}

TEST(GarbageCollectionDaemon, FifteenVersionsOfARewrittenFileLeaveAtMostTwoOnDisk) {
  TempDir dir;
  const std::string files = dir.str() + "/files";
  fs::create_directories(files);
  const std::string path = files + "/big.txt";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--gc-interval", "0"}))
      << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  for (int version = 0; version < 15; ++version) {
    const int64_t lines = WriteText(path, 1000 + version);
    // A file younger than a second is read directly every time (its stat may not tell two
    // writes apart), and never cached under its signature: wait that second, as an editor
    // saving every few seconds would.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    absl::StatusOr<turbine::client::CallResult> read = client->Call("text.lines", {Str(path)});
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_TRUE(read->value.ok()) << read->value.status();
    ASSERT_EQ(read->value->int_value(), lines) << "version " << version;
  }
  ASSERT_TRUE(client->Flush().ok());
  const std::string cli = "--data-dir " + dir.str() + "/data --timeout-ms 120000 ";
  CliResult gc = RunCli(cli + "--json gc");
  ASSERT_EQ(gc.exit_code, 0);
  GcJson removed;
  ASSERT_TRUE(ParseGcJson(gc.out, &removed)) << gc.out;
  EXPECT_GE(removed.removed_tasks, 13u);
  // 15 versions of 1.5 MB that do not compress, then at most 2.
  EXPECT_GT(removed.bytes_before, uint64_t{15} * (3 << 19));
  EXPECT_LT(removed.bytes_after, uint64_t{3} * (3 << 19));

  // The newest version is still what the daemon answers, from memory and after a restart.
  CliResult lines = RunCli(cli + "call text.lines " + path);
  EXPECT_EQ(lines.exit_code, 0);
  CliResult human = RunCli(cli + "gc");
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find("removed 0 tasks"), std::string::npos) << human.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  const int versions = StoredTasksOf(dir.str() + "/data/db", "fs.content");
  EXPECT_GE(versions, 1);
  EXPECT_LE(versions, 2);
  DaemonProcess restarted;
  ASSERT_TRUE(restarted.Start({"--data-dir", dir.str() + "/data"})) << restarted.log();
  EXPECT_EQ(RunCli(cli + "call text.lines " + path).out, lines.out);
  EXPECT_EQ(restarted.Stop(SIGTERM), 0) << restarted.log();
}

// Stats counts the store's bytes as du and `turbine gc` do. It counted memtables, which
// are memory (megabytes of arena for a few writes), and not the log they are written to.
TEST(StoreSize, StatsCountsTheStoreAsDuDoes) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  for (int k = 0; k < 20; ++k) ASSERT_TRUE(client->Call("demo.busy", {Int(k), Int(0)}).ok());
  ASSERT_TRUE(client->SetInputs({{"size", Int(1)}}).ok());
  ASSERT_TRUE(client->Flush().ok());  // a snapshot: in the log and a memtable, not a table
  absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const double du = static_cast<double>(DirectoryBytes(dir.str() + "/data/db"));
  EXPECT_NEAR(static_cast<double>(stats->bytes_on_disk()), du, 0.1 * du + 16384);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// Tasks and inputs to collect: `tasks` busy tasks and `inputs` inputs, all acknowledged.
void Populate(Client& client, int tasks, int inputs, int first_key = 0) {
  absl::StatusOr<std::unique_ptr<turbine::client::CallStream>> stream = client.OpenCallStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  for (int k = 0; k < tasks; ++k) {
    ASSERT_TRUE((*stream)->Send(MakeCallRequest("demo.busy", {Int(first_key + k), Int(0)})).ok());
  }
  for (int k = 0; k < tasks; ++k) ASSERT_TRUE((*stream)->Next().has_value());
  ASSERT_TRUE((*stream)->Close().ok());
  std::vector<std::pair<std::string, turbine::v1::Value>> values;
  for (int k = 0; k < inputs; ++k) values.emplace_back("in" + std::to_string(k), Int(k * 7));
  ASSERT_TRUE(client.SetInputs(std::move(values)).ok());
  ASSERT_TRUE(client.Flush().ok());
}

// WaitForRemovedTasks polls the daemon's count of tasks removed by garbage collection until
// it reaches `count` or `limit` passes; returns the last count (0 if Stats failed).
uint64_t WaitForRemovedTasks(Client& client, uint64_t count, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  uint64_t removed = 0;
  while (true) {
    absl::StatusOr<turbine::v1::StatsReply> stats = client.Stats();
    if (!stats.ok()) return 0;
    removed = stats->gc_removed_tasks();
    if (removed >= count || std::chrono::steady_clock::now() >= deadline) return removed;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Unset inputs that nothing reads leave memory at the next pass, and the store at the one
// after; the inputs still set stay. 250,000 keys set and unset stayed in memory and on disk
// for good.
TEST(GarbageCollectionDaemon, UnsetInputsLeaveTheStoreAndMemory) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--gc-interval", "0"}))
      << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  constexpr int kKeys = 20'000;
  std::vector<std::string> keys;
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<std::pair<std::string, turbine::v1::Value>> values;
    for (int k = batch * kKeys / 4; k < (batch + 1) * kKeys / 4; ++k) {
      keys.push_back("unset-" + std::to_string(k));
      values.emplace_back(keys.back(), Int(k));
    }
    ASSERT_TRUE(client->SetInputs(std::move(values)).ok());
  }
  ASSERT_TRUE(client->SetInputs({{"kept", Int(42)}}).ok());
  ASSERT_TRUE(client->Flush().ok());
  absl::StatusOr<turbine::v1::StatsReply> before = client->Stats();
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_GE(before->tasks(), uint64_t{kKeys});
  absl::StatusOr<uint32_t> deleted = client->DeleteInputs(keys);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  ASSERT_EQ(*deleted, uint32_t{kKeys});

  const std::string cli = "--data-dir " + dir.str() + "/data --timeout-ms 120000 ";
  CliResult first = RunCli(cli + "--json gc");
  ASSERT_EQ(first.exit_code, 0);
  absl::StatusOr<turbine::v1::StatsReply> after = client->Stats();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_LE(after->tasks(), before->tasks() - kKeys) << "the unset inputs stayed in memory";
  CliResult second = RunCli(cli + "--json gc");
  ASSERT_EQ(second.exit_code, 0);
  GcJson removed;
  ASSERT_TRUE(ParseGcJson(second.out, &removed)) << second.out;
  EXPECT_EQ(removed.removed_tasks, uint64_t{kKeys});
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  EXPECT_EQ(StoredTasksOf(dir.str() + "/data/db", "turbine.input"), 1);  // "kept"

  DaemonProcess restarted;
  ASSERT_TRUE(restarted.Start({"--data-dir", dir.str() + "/data"})) << restarted.log();
  EXPECT_EQ(RunCli(cli + "call input.get kept").out, "42\n");
  CliResult gone = RunCli(cli + "call input.get unset-7 2>&1");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.out.find("is not set"), std::string::npos) << gone.out;
  EXPECT_EQ(restarted.Stop(SIGTERM), 0) << restarted.log();
}

// A watch whose task a pass removed (out of memory under a tiny limit, garbage under a
// one-byte disk limit) makes it again and goes on reporting changes. Before, it reported
// "no task with id N" once and then nothing, whatever changed.
TEST(GarbageCollectionDaemon, AWatchGoesOnAfterAPassRemovedItsTask) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--gc-interval", "0",
                            "--memory-limit", "1K", "--disk-limit", "1"}))
      << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SetInputs({{"k", Int(1)}}).ok());
  std::mutex mu;
  std::vector<std::string> seen;  // each value, or its error
  turbine::client::Cancellation cancel;
  std::thread watcher([&] {
    (void)client->Watch(
        MakeCallRequest("input.get", {Str("k")}),
        [&](const CallResult& result) {
          std::lock_guard lock(mu);
          seen.push_back(result.value.ok() ? std::to_string(result.value->int_value())
                                           : std::string(result.value.status().message()));
          return true;
        },
        &cancel);
  });
  const auto saw = [&](const std::string& value) {
    for (int i = 0; i < 1500; ++i) {
      {
        std::lock_guard lock(mu);
        if (!seen.empty() && seen.back() == value) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(saw("1"));
  // Out of memory first (the input and the watched task): a task in memory is in use.
  for (int i = 0; i < 1500; ++i) {
    absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (stats->evicted_tasks() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string cli = "--data-dir " + dir.str() + "/data --timeout-ms 120000 ";
  CliResult gc = RunCli(cli + "--json gc");
  ASSERT_EQ(gc.exit_code, 0) << gc.out;
  GcJson removed;
  ASSERT_TRUE(ParseGcJson(gc.out, &removed)) << gc.out;
  EXPECT_GE(removed.removed_tasks, 1u) << "the watched task was to be removed";
  for (int64_t value : {2, 3}) {
    ASSERT_TRUE(client->SetInputs({{"k", Int(value)}}).ok());
    EXPECT_TRUE(saw(std::to_string(value))) << "the watch reported no " << value;
  }
  cancel.Cancel();
  watcher.join();
  std::lock_guard lock(mu);
  for (const std::string& value : seen) {
    EXPECT_TRUE(value == "1" || value == "2" || value == "3") << "the watch reported " << value;
  }
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// SIGKILL, or SIGTERM (the pass stops early, the daemon exits as usual), during a pass.
TEST(GarbageCollectionDaemon, StoppedDuringAPassItKeepsAcknowledgedInputsAndAnswersRight) {
  TempDir dir;
  const std::string cli = "--data-dir " + dir.str() + " --timeout-ms 120000 ";
  int killed_during_a_pass = 0;
  int terminated_during_a_pass = 0;
  for (int round = 0; round < 4; ++round) {
    DaemonProcess daemon;
    // Everything but the inputs is garbage: a disk limit of one byte.
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--disk-limit", "1", "--gc-interval", "0"}))
        << daemon.log();
    // Before, nothing said that the limit was left to `turbine gc`.
    EXPECT_NE(daemon.log().find("--disk-limit 1 is kept only by `turbine gc`: --gc-interval 0 "
                                "turns the background passes off"),
              std::string::npos)
        << daemon.log();
    std::unique_ptr<Client> client = ConnectTo(daemon);
    ASSERT_NE(client, nullptr);
    Populate(*client, 20000, 50 + round);
    // Inputs acknowledged during the pass must survive too.
    CliResult collected;
    std::thread collector([&] { collected = RunCli(cli + "gc 2>&1"); });
    ASSERT_TRUE(daemon.WaitForLog("garbage collection pass started")) << daemon.log();
    int acknowledged = 0;
    for (; acknowledged < 20 + 10 * round; ++acknowledged) {
      ASSERT_TRUE(client->SetInputs({{"during", Int(acknowledged)}}).ok());
    }
    const absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
    ASSERT_TRUE(stats.ok());
    killed_during_a_pass += stats->gc_passes() == 0 ? 1 : 0;
    if (round % 2 == 0) {
      EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
      collector.join();
    } else {
      EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
      collector.join();
      // A stop ends the pass as it ends every request: the CLI says the daemon is
      // shutting down (exit code 3), and the daemon does not call it a failure. Before:
      // "ABORTED: garbage collection stopped early" (exit code 4), "garbage collection
      // failed" in the log.
      EXPECT_EQ(daemon.log().find("garbage collection failed"), std::string::npos)
          << daemon.log();
      if (daemon.log().find("pass stopped early") != std::string::npos) {
        ++terminated_during_a_pass;
        EXPECT_EQ(collected.exit_code, 3) << collected.out;
        EXPECT_NE(collected.out.find("is shutting down"), std::string::npos)
            << collected.out;
      }
    }

    DaemonProcess restarted;
    ASSERT_TRUE(restarted.Start({"--data-dir", dir.str(), "--gc-interval", "0"}))
        << restarted.log();
    client = ConnectTo(restarted);
    ASSERT_NE(client, nullptr);
    for (int k = 0; k < 50 + round; ++k) {
      absl::StatusOr<turbine::client::CallResult> got =
          client->Call("input.get", {Str("in" + std::to_string(k))});
      ASSERT_TRUE(got.ok() && got->value.ok()) << "round " << round << " input " << k;
      EXPECT_EQ(got->value->int_value(), k * 7);
    }
    absl::StatusOr<turbine::client::CallResult> during = client->Call("input.get", {Str("during")});
    ASSERT_TRUE(during.ok() && during->value.ok());
    EXPECT_EQ(during->value->int_value(), acknowledged - 1);
    for (int k = 0; k < 20000; k += 997) {
      absl::StatusOr<turbine::client::CallResult> busy =
          client->Call("demo.busy", {Int(k), Int(0)});
      ASSERT_TRUE(busy.ok() && busy->value.ok()) << "round " << round;
      EXPECT_EQ(busy->value->int_value(), k);
    }
    CliResult gc = RunCli(cli + "--json gc");
    EXPECT_EQ(gc.exit_code, 0) << "a pass completes after the restart";
    EXPECT_EQ(restarted.Stop(SIGTERM), 0) << restarted.log();
  }
  // The kill came while the pass still ran at least once (it had started, and had not
  // finished when the inputs above were acknowledged), or the test proved nothing.
  EXPECT_GT(killed_during_a_pass, 0);
  // Likewise for the stops by SIGTERM (in 2 of 2 rounds in each run seen).
  EXPECT_GT(terminated_during_a_pass, 0);
}

// `turbine gc` waits for a pass longer than --timeout-ms while the daemon answers (a pass
// over a large store outlasts any unary deadline), and gives up once the daemon stops
// answering for that long.
class GcLongerThanTheDeadline : public ::testing::Test {
 protected:
  void SetUp() override {
    // Everything but the input is garbage: a disk limit of one byte.
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--disk-limit", "1", "--gc-interval", "0"}))
        << daemon.log();
    std::unique_ptr<Client> client = ConnectTo(daemon);
    ASSERT_NE(client, nullptr);
    Populate(*client, kTasks, 1);
  }

  static constexpr int kTasks = 40000;  // a pass of about a second in a Debug build
  TempDir dir;
  DaemonProcess daemon;
};

// A pass a stop ends tells clients not to send it again (a retry policy would start a pass
// nobody asked for on the next daemon), as every request a stop ends does.
TEST_F(GcLongerThanTheDeadline, APassAStopEndsIsNotToBeRetried) {
  auto stub = turbine::v1::Turbine::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  turbine::v1::CollectGarbageReply reply;
  grpc::Status status;
  std::thread collector(
      [&] { status = stub->CollectGarbage(&context, turbine::v1::CollectGarbageRequest(), &reply); });
  ASSERT_TRUE(daemon.WaitForLog("garbage collection pass started")) << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  collector.join();
  // The pass takes about a second; the stop comes as it starts.
  ASSERT_NE(daemon.log().find("pass stopped early"), std::string::npos) << daemon.log();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto pushback = trailers.find("grpc-retry-pushback-ms");
  ASSERT_NE(pushback, trailers.end());
  EXPECT_EQ(std::string(pushback->second.data(), pushback->second.size()), "-1");
}

// A --timeout-ms shorter than a Stats round trip still bounds silence only: the CLI reads
// Stats with a deadline of its poll at least. Before, each reading failed with the 1 ms
// deadline, and the CLI gave up on a daemon that answered.
TEST_F(GcLongerThanTheDeadline, ATimeoutOfOneMillisecondStillWaitsWhileTheDaemonAnswers) {
  CliResult gc = RunCli("--data-dir " + dir.str() + " --timeout-ms 1 --json gc");
  ASSERT_EQ(gc.exit_code, 0) << gc.out;
  GcJson removed;
  ASSERT_TRUE(ParseGcJson(gc.out, &removed)) << gc.out;
  EXPECT_EQ(removed.removed_tasks, static_cast<uint64_t>(kTasks));
}

TEST_F(GcLongerThanTheDeadline, TurbineGcWaitsForItWhileTheDaemonAnswers) {
  CliResult gc = RunCli("--data-dir " + dir.str() + " --timeout-ms 200 --json gc");
  ASSERT_EQ(gc.exit_code, 0) << gc.out;
  GcJson removed;
  ASSERT_TRUE(ParseGcJson(gc.out, &removed)) << gc.out;
  EXPECT_EQ(removed.removed_tasks, static_cast<uint64_t>(kTasks));
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  const absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->gc_passes(), 1u);
  EXPECT_GT(stats->gc_micros(), 400'000u) << "the pass fit in the deadline: this proves nothing";
  EXPECT_EQ(stats->gc_phase(), turbine::v1::GC_PHASE_IDLE);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST_F(GcLongerThanTheDeadline, TurbineGcGivesUpOnceTheDaemonStopsAnswering) {
  // Stopped while it deletes: the pass has begun and is far from its end.
  bool paused = false;
  std::thread pauser([&] {
    std::unique_ptr<Client> watcher = ConnectTo(daemon);
    for (int i = 0; watcher != nullptr && i < 20000 && !paused; ++i) {
      const absl::StatusOr<turbine::v1::StatsReply> stats = watcher->Stats();
      if (stats.ok() && stats->gc_phase() == turbine::v1::GC_PHASE_DELETING) {
        daemon.Signal(SIGSTOP);
        paused = true;
      }
      if (stats.ok() && stats->gc_passes() > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const auto start = std::chrono::steady_clock::now();
  CliResult gc = RunCli("--data-dir " + dir.str() + " --timeout-ms 1000 gc 2>&1");
  const auto took = std::chrono::steady_clock::now() - start;
  pauser.join();
  daemon.Signal(SIGCONT);
  ASSERT_TRUE(paused) << "the pass ended before it could be stopped while deleting";
  EXPECT_EQ(gc.exit_code, 4) << gc.out;  // kRpcError: DEADLINE_EXCEEDED
  EXPECT_NE(gc.out.find("did not answer for 1000 ms"), std::string::npos) << gc.out;
  EXPECT_LT(took, std::chrono::seconds(20));
  // The pass goes on once the daemon runs again, and completes.
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 600; ++i) {
    const absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (stats->gc_passes() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->gc_passes(), 1u);
  EXPECT_EQ(stats->gc_removed_tasks(), static_cast<uint64_t>(kTasks));
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// "removed N tasks of M": M counts the tasks the pass looked at, those written while it ran
// that a later round saw too. Before, M was the first round's alone, and a pass during
// calls said "removed 150000 tasks of 50000".
TEST(GarbageCollectionDaemon, APassNeverSaysItRemovedMoreTasksThanItLookedAt) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--disk-limit", "100K", "--gc-interval", "0"}))
      << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  Populate(*client, 5000, 0);
  std::atomic<bool> done = false;
  CliResult collected;
  std::thread collector([&] {
    collected = RunCli("--data-dir " + dir.str() + " --timeout-ms 120000 gc");
    done = true;
  });
  // Tasks written while the pass runs: over the limit again, a later round sees them.
  for (int batch = 1; batch <= 20 && !done; ++batch) Populate(*client, 5000, 0, batch * 5000);
  collector.join();
  ASSERT_EQ(collected.exit_code, 0) << collected.out;
  uint64_t removed = 0;
  uint64_t looked_at = 0;
  ASSERT_EQ(std::sscanf(collected.out.c_str(), "removed %" SCNu64 " tasks of %" SCNu64, &removed,
                        &looked_at),
            2)
      << collected.out;
  EXPECT_GT(removed, 0u) << collected.out;
  EXPECT_LE(removed, looked_at) << collected.out;
}

// A pass asked for says so too, once, when it leaves the store over the limit. Before, only
// the background passes did: under --gc-interval 0, nothing said why nothing was kept.
TEST(GarbageCollectionDaemon, APassAskedForThatLeavesTheStoreOverTheLimitSaysSoOnce) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--gc-interval", "0", "--disk-limit", "1K"}))
      << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  Populate(*client, 100, 3);
  for (int pass = 0; pass < 2; ++pass) {
    CliResult collected = RunCli("--data-dir " + dir.str() + " --timeout-ms 120000 gc");
    ASSERT_EQ(collected.exit_code, 0) << collected.out;
  }
  EXPECT_TRUE(daemon.WaitForLog("over the disk limit of 1024")) << daemon.log();
  // The second pass, which found nothing more to remove, ends the log read so far.
  ASSERT_TRUE(daemon.WaitForLog("garbage collection removed 0 of")) << daemon.log();
  const std::string log = daemon.log();
  const size_t first = log.find("over the disk limit of 1024");
  EXPECT_EQ(log.find("over the disk limit of 1024", first + 1), std::string::npos) << log;
}

TEST(GarbageCollectionDaemon, PassesRunByThemselvesWhenTheDaemonIsIdle) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--gc-interval", "1s", "--disk-limit", "1K"}))
      << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  Populate(*client, 500, 3);
  // Over the limit and idle: a pass comes within seconds, and removes all but the inputs.
  EXPECT_GE(WaitForRemovedTasks(*client, 500, std::chrono::seconds(30)), 500u);
  absl::StatusOr<turbine::v1::StatsReply> stats = client->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->gc_passes(), 1u);
  EXPECT_EQ(stats->tasks_used_today(), 3u);  // the inputs' tasks, never removed
  // What is left (the inputs, the store's own files) is over 1 KiB: the log says so once,
  // not at every pass (one a second here). Before, nothing said why nothing was kept.
  EXPECT_TRUE(daemon.WaitForLog("over the disk limit of 1024")) << daemon.log();
  for (int wait = 0; wait < 300 && stats->gc_passes() < 3; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stats = client->Stats();
    ASSERT_TRUE(stats.ok());
  }
  EXPECT_GE(stats->gc_passes(), 3u);
  const std::string log = daemon.log();
  const size_t first = log.find("over the disk limit");
  EXPECT_EQ(log.find("over the disk limit", first + 1), std::string::npos) << log;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// StartOverALimitOf1K starts a daemon with --disk-limit 1K and timed passes an hour apart,
// and waits for the pass of its first size check, which finds even the empty store over
// the limit and says so.
void StartOverALimitOf1K(const TempDir& dir, DaemonProcess& daemon,
                         std::unique_ptr<Client>* client) {
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--gc-interval", "1h", "--disk-limit", "1K"}))
      << daemon.log();
  *client = ConnectTo(daemon);
  ASSERT_NE(*client, nullptr);
  ASSERT_TRUE(daemon.WaitForLog("over the disk limit of 1024")) << daemon.log();
}

// A pass that leaves the store over the limit (here its own files are) does not stop the
// limit from working: results made after it are collected once the store grows again,
// without waiting for the next timed pass. Before, no pass came until --gc-interval (an
// hour) while the store grew without bound.
TEST(GarbageCollectionDaemon, AStoreLeftOverTheLimitIsCollectedAgainOnceItGrows) {
  TempDir dir;
  DaemonProcess daemon;
  std::unique_ptr<Client> client;
  ASSERT_NO_FATAL_FAILURE(StartOverALimitOf1K(dir, daemon, &client));
  constexpr int kTasks = 5000;
  Populate(*client, kTasks, /*inputs=*/1, /*first_key=*/1000000);
  // Size checks come every 10 s.
  EXPECT_GE(WaitForRemovedTasks(*client, kTasks, std::chrono::seconds(40)),
            static_cast<uint64_t>(kTasks))
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// The store growing past --disk-limit is collected while the daemon is busy too: a daemon
// that executed something every second never checked its size, and grew eight times past
// a 200 MB limit under a client changing its inputs without pause.
TEST(GarbageCollectionDaemon, AStoreGrowingPastTheLimitIsCollectedThoughTheDaemonNeverRests) {
  TempDir dir;
  DaemonProcess daemon;
  std::unique_ptr<Client> client;
  ASSERT_NO_FATAL_FAILURE(StartOverALimitOf1K(dir, daemon, &client));
  // Something executes at every moment from here on: 20 ms tasks, one after another.
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    for (int k = 2000000; !stop.load(); ++k) {
      (void)client->Call(MakeCallRequest("demo.busy", {Int(k), Int(20'000)}));
    }
  });
  EXPECT_GT(WaitForRemovedTasks(*client, 1, std::chrono::seconds(40)), 0u) << daemon.log();
  stop.store(true);
  busy.join();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// A pass asked for that removes nothing still leaves `du` showing the store's data, not a
// log of every change made to it: one input set 30 times to 1 MB values left 30 MB of log
// that `turbine gc` reported as "30 MB -> 30 MB".
TEST(GarbageCollectionDaemon, APassAskedForWritesOutTheLogOfChangedInputs) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--gc-interval", "1h"})) << daemon.log();
  std::unique_ptr<Client> client = ConnectTo(daemon);
  ASSERT_NE(client, nullptr);
  std::mt19937_64 random(7);
  for (int i = 0; i < 30; ++i) {
    std::string value(1 << 20, '\0');
    for (char& c : value) c = static_cast<char>(random());  // incompressible
    ASSERT_TRUE(client->SetInputs({{"churning", turbine::client::BytesValue(value)}}).ok());
  }
  absl::StatusOr<turbine::v1::CollectGarbageReply> reply = client->CollectGarbage();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_GT(reply->bytes_before(), uint64_t{30} << 20);
  EXPECT_LT(reply->bytes_after(), uint64_t{8} << 20);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(GarbageCollectionDaemon, SizesAndDurationsAreCheckedAtStart) {
  TempDir dir;
  for (const std::vector<std::string>& good :
       {std::vector<std::string>{"--disk-limit", "512M", "--retention", "12h"},
        std::vector<std::string>{"--disk-limit", "2G", "--retention", "90", "--gc-interval", "0"},
        std::vector<std::string>{"--disk-limit", "1048576", "--retention", "30d"},
        // Byte counts take units too. Before: "Value 8M not in range 1 to 1099511627776".
        std::vector<std::string>{"--reply-buffer-bytes", "8M", "--stream-reply-buffer-bytes",
                                 "2MiB", "--max-message-bytes", "4M"}}) {
    DaemonProcess daemon;
    std::vector<std::string> args = {"--data-dir", dir.str()};
    args.insert(args.end(), good.begin(), good.end());
    ASSERT_TRUE(daemon.Start(args)) << daemon.log();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--disk-limit", "12X"},
                                              std::vector<std::string>{"--disk-limit", "-1"},
                                              std::vector<std::string>{"--retention", "3w"},
                                              std::vector<std::string>{"--gc-interval", "h"}}) {
    DaemonProcess daemon;
    std::vector<std::string> args = {"--data-dir", dir.str()};
    args.insert(args.end(), bad.begin(), bad.end());
    EXPECT_FALSE(daemon.Start(args));
    EXPECT_EQ(daemon.Reap(), 2) << bad[0] << " " << bad[1];
    EXPECT_NE(daemon.log().find("is not a"), std::string::npos) << daemon.log();
  }
  // Well formed, but past what turbined counts. Before: "is not a size", "is not a duration".
  for (const auto& [flag, value, why] : std::vector<std::array<std::string, 3>>{
           {"--disk-limit", "16777216T", "'16777216T' is more than 2^64 bytes"},
           {"--memory-limit", "99999999999999999999", "is more than 2^64 bytes"},
           {"--retention", "9223372036854775807", "is longer than turbined counts"},
           // Past 292 years a timer's nanoseconds wrapped: a pass ran back to back, and
           // every stop was cut short at once.
           {"--gc-interval", "106752d", "'106752d' is longer than turbined counts (100 years"},
           {"--stop-timeout", "9223372037s", "is longer than turbined counts"},
           {"--settle-delay", "36501d", "is longer than turbined counts"}}) {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir.str(), flag, value}));
    EXPECT_EQ(daemon.Reap(), 2) << flag;
    EXPECT_NE(daemon.log().find(why), std::string::npos) << daemon.log();
  }
}

uint64_t LogBytes(const std::string& db) {
  // RocksDB deletes a log while this lists them: one gone meanwhile counts nothing.
  uint64_t bytes = 0;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(db, error)) {
    if (entry.path().extension() != ".log") continue;
    const uint64_t size = entry.file_size(error);
    if (!error) bytes += size;
  }
  return bytes;
}

// --settle-delay: a daemon idle that long has its store flush the memtables, so a SIGKILL
// then leaves next to no log to replay; with 0 the log keeps everything since the last
// flush. Either way the restart answers from the store.
TEST(StoreSize, AnIdleDaemonKilledWithSigkillLeavesLittleLogToReplay) {
  for (const bool settle : {true, false}) {
    SCOPED_TRACE(settle ? "--settle-delay 5s" : "--settle-delay 0");
    TempDir dir;
    const std::string db = dir.str() + "/db";
    // The memory limit sizes the memtables (64 MiB): none fills up and flushes by itself.
    const std::vector<std::string> args = {"--data-dir", dir.str(), "--memory-limit", "1G",
                                           "--settle-delay", settle ? "5s" : "0"};
    {
      DaemonProcess daemon;
      ASSERT_TRUE(daemon.Start(args)) << daemon.log();
      std::unique_ptr<Client> client = ConnectTo(daemon);
      ASSERT_NE(client, nullptr);
      // About 8 MiB of log, over the 4 MiB a settle needs, well within the 5 s before it.
      Populate(*client, 30000, 1);
      ASSERT_GT(LogBytes(db), uint64_t{4} << 20);
      // Waits for the event, not for a duration: generous for a loaded machine, and still
      // well before the default delay (30 s) would do it. With 0, three seconds show that
      // nothing happens.
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(settle ? 20 : 3);
      while (LogBytes(db) >= (uint64_t{1} << 20) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (settle) {
        EXPECT_LT(LogBytes(db), uint64_t{1} << 20);
      } else {
        EXPECT_GT(LogBytes(db), uint64_t{4} << 20);
      }
      EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
    }
    DaemonProcess restarted;
    ASSERT_TRUE(restarted.Start(args)) << restarted.log();
    std::unique_ptr<Client> client = ConnectTo(restarted);
    ASSERT_NE(client, nullptr);
    absl::StatusOr<CallResult> answer = client->Call("demo.busy", {Int(29999), Int(0)});
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->value->int_value(), 29999);
    EXPECT_EQ(answer->source, turbine::v1::SOURCE_DISK);
  }
}

TEST(StoreSize, IdleRestartsDoNotGrowTheStore) {
  TempDir dir;
  const std::string db = dir.str() + "/db";
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
    std::unique_ptr<Client> client = ConnectTo(daemon);
    ASSERT_NE(client, nullptr);
    Populate(*client, 2000, 20);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  // The first restart after a session with writes may still move things about (the stop
  // flushed the memtables; the open deletes the emptied logs): the store may shrink then,
  // never grow. After that, restarts leave it as it is.
  const uint64_t written_bytes = DirectoryBytes(db);
  uint64_t settled_bytes = 0;
  size_t settled_files = 0;
  for (int restart = 1; restart <= 5; ++restart) {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
    const uint64_t bytes = DirectoryBytes(db);
    const size_t files = FileCount(db);
    EXPECT_LE(bytes, written_bytes + written_bytes / 20) << "restart " << restart;
    if (restart == 1) {
      settled_bytes = bytes;
      settled_files = files;
      continue;
    }
    // Before: each restart left one more (empty) log file behind, without end.
    EXPECT_EQ(files, settled_files) << "restart " << restart;
    EXPECT_LE(bytes, settled_bytes + settled_bytes / 20) << "restart " << restart;
    EXPECT_GE(bytes, settled_bytes - settled_bytes / 20) << "restart " << restart;
  }
}

}  // namespace
