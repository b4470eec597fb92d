// turbined --trace-file: a real daemon traces from start to shutdown into a file, which is
// one JSON array after SIGTERM (executions with their reasons, snapshots, GC passes) and,
// after SIGKILL, the same without its closing bracket.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "../storage/small_disk.h"
#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

const nlohmann::json* FindSlice(const nlohmann::json& events, const std::string& name) {
  for (const nlohmann::json& event : events) {
    if (event["ph"] == "X" && event["name"] == name) return &event;
  }
  return nullptr;
}

TEST(TraceFile, ATraceFromStartToSigtermIsOneJsonArray) {
  TempDir dir;
  const std::string trace = dir.str() + "/trace.json";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--trace-file", trace}))
      << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  ASSERT_EQ(RunCli(cli + "set k 4").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call input.get k").out, "4\n");
  ASSERT_EQ(RunCli(cli + "set k 5").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call input.get k").out, "5\n");
  ASSERT_EQ(RunCli(cli + "flush").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "gc").exit_code, 0);
  // One trace at a time: the file's holds the engine's. Refused without saying "tracing"
  // first.
  const CliResult refused = RunCli(cli + "trace --seconds 1 -o " + dir.str() + "/other.json 2>&1");
  EXPECT_EQ(refused.exit_code, 4);
  EXPECT_NE(refused.out.find("a trace is already running"), std::string::npos) << refused.out;
  EXPECT_EQ(refused.out.find("tracing for"), std::string::npos) << refused.out;
  ASSERT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();

  const nlohmann::json events = nlohmann::json::parse(ReadAll(trace));  // throws if invalid
  ASSERT_TRUE(events.is_array());
  int executions = 0;
  for (const nlohmann::json& event : events) {
    if (event["ph"] != "X" || event["cat"] != "execution") continue;
    ++executions;
    EXPECT_EQ(event["name"], "input.get");
    EXPECT_FALSE(event["args"]["reason"].get<std::string>().empty()) << event;
  }
  EXPECT_EQ(executions, 2);
  const nlohmann::json* gc = FindSlice(events, "gc");
  const nlohmann::json* snapshot = FindSlice(events, "snapshot");
  ASSERT_TRUE(gc && snapshot) << events.dump(1);
  EXPECT_EQ((*gc)["cat"], "gc");
  EXPECT_NE((*gc)["args"]["reason"].get<std::string>().find("pass asked for: removed "),
            std::string::npos);
  // The second execution says why: the input it read changed.
  bool dependency_changed = false;
  for (const nlohmann::json& event : events) {
    if (event["ph"] == "X" &&
        event["args"].value("reason", "").starts_with("dependency changed: turbine.input(\"k\")")) {
      dependency_changed = true;
    }
  }
  EXPECT_TRUE(dependency_changed) << events.dump(1);
  // Every track is named.
  bool named = false;
  for (const nlohmann::json& event : events) named = named || event["ph"] == "M";
  EXPECT_TRUE(named);
}

// A trace file on a disk that fills drops the events it cannot write and goes on once the
// disk has room again: the file stays one JSON array. Before, it stopped for good at the
// first failed write, which left half an event in it.
TEST(TraceFile, AFullDiskDropsEventsAndTheFileResumesWhenThereIsRoom) {
  turbine::testing::SmallDisk disk(size_t{4} << 20);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  TempDir dir;
  const std::string trace = disk.str() + "/trace.json";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--trace-file", trace}))
      << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  ASSERT_EQ(RunCli(cli + "call demo.fib 30").exit_code, 0);
  ASSERT_GT(disk.Fill("ballast"), 0u);
  ASSERT_EQ(RunCli(cli + "call demo.steps 200 0").exit_code, 0);  // 201 executions to trace
  EXPECT_TRUE(daemon.WaitForLog("cannot write the trace file")) << daemon.log();
  disk.Free("ballast");
  ASSERT_EQ(RunCli(cli + "set k 7").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call input.get k").out, "7\n");
  EXPECT_TRUE(daemon.WaitForLog("is written again")) << daemon.log();
  ASSERT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  EXPECT_EQ(daemon.log().find("is incomplete"), std::string::npos) << daemon.log();

  const nlohmann::json events = nlohmann::json::parse(ReadAll(trace));  // throws if invalid
  ASSERT_TRUE(events.is_array());
  bool after = false;  // the execution traced once the disk had room
  for (const nlohmann::json& event : events) {
    after = after || (event["ph"] == "X" && event["name"] == "input.get");
  }
  EXPECT_TRUE(after) << events.dump(1);
}

// `turbine trace -o FILE` on a disk that fills up meanwhile leaves FILE as it was: the trace
// is written beside it and renamed over it. It left half a trace, cut mid-event.
TEST(TraceFile, ATraceThatDoesNotFitLeavesTheFileAsItWas) {
  turbine::testing::SmallDisk disk(size_t{256} << 10);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  TempDir dir;
  const std::string out = disk.str() + "/trace.json";
  std::ofstream(out) << "[]\n";  // an earlier trace
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  ASSERT_EQ(RunCli(cli + "call demo.fib 25").exit_code, 0);
  ASSERT_GT(disk.Fill("ballast"), 0u);
  auto busy = std::async(std::launch::async, [&] {  // executions to trace, while it runs
    return RunCli(cli + "call demo.steps 200 0").exit_code;
  });
  const CliResult traced = RunCli(cli + "trace --seconds 2 -o " + out + " 2>&1");
  EXPECT_EQ(busy.get(), 0);
  EXPECT_EQ(traced.exit_code, 2) << traced.out;
  EXPECT_NE(traced.out.find("nothing was written"), std::string::npos) << traced.out;
  EXPECT_EQ(ReadAll(out), "[]\n");
  disk.Free("ballast");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(disk.str()),
                          std::filesystem::directory_iterator()),
            1)
      << "a temporary file was left behind";
  ASSERT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(TraceFile, AfterSigkillTheFileLacksOnlyItsClosingBracket) {
  TempDir dir;
  const std::string trace = dir.str() + "/trace.json";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--trace-file", trace}))
      << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  ASSERT_EQ(RunCli(cli + "set k 4").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call input.get k").out, "4\n");
  // Written every half second: wait until the execution is in the file.
  std::string content;
  for (int i = 0; i < 400 && content.find("input.get") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    content = ReadAll(trace);
  }
  ASSERT_NE(content.find("input.get"), std::string::npos);
  daemon.Stop(SIGKILL);
  content = ReadAll(trace);
  ASSERT_EQ(content.find(']', content.rfind('}')), std::string::npos) << "no closing bracket";
  const nlohmann::json events = nlohmann::json::parse(content + "]");
  ASSERT_NE(FindSlice(events, "input.get"), nullptr) << events.dump(1);
}

TEST(TraceFile, AnUnwritableTraceFileIsAStartError) {
  TempDir dir;
  DaemonProcess daemon;
  EXPECT_FALSE(daemon.Start(
      {"--data-dir", dir.str() + "/data", "--trace-file", dir.str() + "/no/such/dir/trace.json"}));
  EXPECT_EQ(daemon.Reap(), 2);  // a bad setting
  EXPECT_NE(daemon.log().find("--trace-file"), std::string::npos) << daemon.log();
}

}  // namespace
