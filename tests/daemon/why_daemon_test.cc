// `turbine why` against real turbined processes: an input change followed through two
// levels of sheet cells, a file edited while the daemon runs and while it is down (what
// changed in its stat), an early cutoff, and a function's version bump across a restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

void Write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// WaitUntilSettled waits until the file's stat is older than the daemon's racy window (1 s):
// only then does fs.read trust the stat signature and forward to fs.content(path, size,
// mtime, ctime, inode), whose arguments `why` shows.
void WaitUntilSettled(const std::string& path) {
  for (;;) {
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const auto nanos = [](const timespec& t) {
      return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
    };
    if (nanos(now) - std::max(nanos(st.st_mtim), nanos(st.st_ctim)) > 1'100'000'000) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool IsDigest(const nlohmann::json& text) {
  return std::regex_match(text.get<std::string>(), std::regex("[0-9a-f]{16}"));
}

class WhyDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.str() + "/notes.txt";
    Write(file_, "a\nb\n");  // 4 bytes
    Start();
  }

  // A new process each time: its log starts empty, so Start waits for its own "ready".
  void Start() {
    daemon_ = std::make_unique<DaemonProcess>();
    ASSERT_TRUE(daemon_->Start({"--data-dir", dir_.str() + "/data"})) << daemon_->log();
  }
  void Stop() { ASSERT_EQ(daemon_->Stop(SIGTERM), 0) << daemon_->log(); }

  std::string Cli(const std::string& args, int expected_exit = 0) {
    CliResult result = RunCli("--data-dir " + dir_.str() + "/data " + args);
    EXPECT_EQ(result.exit_code, expected_exit) << args << "\n" << result.out;
    return result.out;
  }
  nlohmann::json Why(const std::string& call) {
    return nlohmann::json::parse(Cli("--json why " + call));
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::string file_;
};

TEST_F(WhyDaemon, AnInputChangeIsFollowedThroughTwoLevels) {
  Cli("set b 1 a '\"b + 1\"'");
  EXPECT_EQ(Cli("call sheet.eval a"), "2\n");
  Cli("set b 5");
  EXPECT_EQ(Cli("call sheet.eval a"), "6\n");

  const nlohmann::json why = Why("sheet.eval a");
  ASSERT_EQ(why["steps"].size(), 3u) << why.dump(1);
  for (const nlohmann::json& step : why["steps"]) {  // every documented key, null if none
    for (const char* key : {"cause", "receiver", "end_unix_micros", "duration_micros"}) {
      EXPECT_TRUE(step.contains(key)) << key << " in " << step;
    }
    if (step.contains("receiver")) EXPECT_TRUE(step["receiver"].is_null()) << step;
  }
  EXPECT_TRUE(why["steps"][2]["cause"].is_null()) << "an input has no cause";
  // An input's step has the time of its change, and no duration: nothing executed.
  EXPECT_TRUE(why["steps"][2]["duration_micros"].is_null()) << why["steps"][2];
  const nlohmann::json& a = why["steps"][0];
  const nlohmann::json& b = why["steps"][1];
  const nlohmann::json& input = why["steps"][2];
  EXPECT_EQ(a["function"], "sheet.eval");
  EXPECT_EQ(a["args"], "\"a\"");
  EXPECT_EQ(a["reason"], "dependency changed");
  EXPECT_EQ(a["cause"], b["task"]);
  EXPECT_EQ(a["executions"], 2);
  EXPECT_EQ(b["depth"], 1);
  EXPECT_EQ(b["args"], "\"b\"");
  EXPECT_EQ(b["reason"], "dependency changed");
  EXPECT_EQ(b["cause"], input["task"]);
  EXPECT_EQ(input["depth"], 2);
  EXPECT_EQ(input["kind"], "input");
  EXPECT_EQ(input["args"], "\"b\"");
  ASSERT_TRUE(IsDigest(input["output_before"]) && IsDigest(input["output_after"])) << input;
  EXPECT_NE(input["output_before"], input["output_after"]);
  EXPECT_GT(input["end_unix_micros"].get<int64_t>(), 0);

  // Back to 1: the input's new digest is the one it had before.
  const nlohmann::json old_digest = input["output_before"];
  Cli("set b 1");
  EXPECT_EQ(Cli("call sheet.eval a"), "2\n");
  EXPECT_EQ(Why("sheet.eval a")["steps"][2]["output_after"], old_digest);

  // The human form: one step per task, causes indented under what they caused.
  const std::string text = Cli("why sheet.eval a");
  EXPECT_NE(text.find("sheet.eval(\"a\") @"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  sheet.eval(\"b\") @"), std::string::npos) << text;
  EXPECT_NE(text.find("\n    turbine.input(\"b\") @"), std::string::npos) << text;
  EXPECT_NE(text.find("executed: dependency changed (sheet.eval(\"b\")"), std::string::npos)
      << text;
}

TEST_F(WhyDaemon, AnEarlyCutoffSaysTheReaderDidNotReExecute) {
  Cli("set b 1 a '\"b * 0\"' c '\"a + 1\"'");
  EXPECT_EQ(Cli("call sheet.eval c"), "1\n");
  Cli("set b 7");  // a is still 0: c need not execute
  EXPECT_EQ(Cli("call sheet.eval c"), "1\n");
  const nlohmann::json why = Why("sheet.eval c");
  ASSERT_GE(why["steps"].size(), 2u) << why.dump(1);
  EXPECT_EQ(why["steps"][0]["reason"], "first execution");
  EXPECT_EQ(why["steps"][0]["executions"], 1);
  const nlohmann::json& cutoff = why["steps"][1];
  EXPECT_EQ(cutoff["kind"], "cutoff");
  EXPECT_EQ(cutoff["args"], "\"a\"");
  EXPECT_EQ(cutoff["executions"], 2);
  EXPECT_EQ(cutoff["output_changed"], false);
  EXPECT_NE(cutoff["text"].get<std::string>().find("the reader did NOT re-execute"),
            std::string::npos);
}

TEST_F(WhyDaemon, AFileEditedWhileRunningShowsWhatChangedInItsStat) {
  WaitUntilSettled(file_);
  EXPECT_EQ(Cli("call text.lines " + file_), "2\n");
  Write(file_, "a\nb\nc\nd\n");  // 8 bytes
  WaitUntilSettled(file_);
  std::string lines;
  for (int i = 0; i < 500 && lines != "4\n"; ++i) {
    lines = Cli("call text.lines " + file_);  // until the watcher has told the daemon
    if (lines != "4\n") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(lines, "4\n");

  const nlohmann::json why = Why("text.lines " + file_);
  ASSERT_GE(why["steps"].size(), 2u) << why.dump(1);
  EXPECT_EQ(why["steps"][0]["reason"], "dependency changed");
  const nlohmann::json& read = why["steps"][1];
  EXPECT_EQ(read["function"], "fs.read");
  EXPECT_EQ(why["steps"][0]["cause"], read["task"]);
  EXPECT_EQ(read["reason"], "invalidated");
  const std::string q = "\"";
  EXPECT_TRUE(read["output_before"].get<std::string>().starts_with("ref fs.content(" + q + file_ +
                                                                   q + ", 4, "))
      << read;
  EXPECT_TRUE(read["output_after"].get<std::string>().starts_with("ref fs.content(" + q + file_ +
                                                                  q + ", 8, "))
      << read;
}

TEST_F(WhyDaemon, AFileEditedWhileDownIsFoundByTheRestartReValidation) {
  WaitUntilSettled(file_);
  EXPECT_EQ(Cli("call text.lines " + file_), "2\n");
  Stop();
  Write(file_, "a\nb\nc\n");  // 6 bytes
  WaitUntilSettled(file_);
  Start();
  EXPECT_EQ(Cli("call text.lines " + file_), "3\n");

  const nlohmann::json why = Why("text.lines " + file_);
  ASSERT_GE(why["steps"].size(), 2u) << why.dump(1);
  EXPECT_EQ(why["steps"][0]["reason"], "dependency changed");
  const nlohmann::json& read = why["steps"][1];
  EXPECT_EQ(read["function"], "fs.read");
  EXPECT_EQ(read["reason"], "restart re-validation");
  const std::string q = "\"";
  EXPECT_TRUE(read["output_before"].get<std::string>().starts_with("ref fs.content(" + q + file_ +
                                                                   q + ", 4, "))
      << read;
  EXPECT_TRUE(read["output_after"].get<std::string>().starts_with("ref fs.content(" + q + file_ +
                                                                  q + ", 6, "))
      << read;
}

TEST_F(WhyDaemon, AnUnchangedFileAfterARestartIsTrustedAsStored) {
  WaitUntilSettled(file_);
  EXPECT_EQ(Cli("call text.lines " + file_), "2\n");
  Stop();
  Start();
  EXPECT_EQ(Cli("call text.lines " + file_), "2\n");

  // The file was checked at start and had not changed: the result is served as stored,
  // and fs.read is not even loaded.
  const nlohmann::json why = Why("text.lines " + file_);
  ASSERT_EQ(why["steps"].size(), 1u) << why.dump(1);
  EXPECT_EQ(why["steps"][0]["kind"], "restored");
  EXPECT_EQ(why["steps"][0]["executions"], 0);
  EXPECT_NE(why["steps"][0]["text"].get<std::string>().find("trusted"), std::string::npos)
      << why.dump(1);
}

TEST(WhyVersionBump, TheReaderOfABumpedFunctionNamesTheVersionItLost) {
  TempDir dir;
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  {
    DaemonProcess v1;
    v1.UseBinary(TURBINED_WHY_V1_PATH);
    ASSERT_TRUE(v1.Start({"--data-dir", dir.str() + "/data"})) << v1.log();
    CliResult first = RunCli(cli + "call test.why.caller 3");
    ASSERT_EQ(first.exit_code, 0);
    EXPECT_EQ(first.out, "\"[v1:3]\"\n");
    ASSERT_EQ(v1.Stop(SIGTERM), 0) << v1.log();
  }
  DaemonProcess v2;
  v2.UseBinary(TURBINED_WHY_V2_PATH);
  ASSERT_TRUE(v2.Start({"--data-dir", dir.str() + "/data"})) << v2.log();
  CliResult second = RunCli(cli + "call test.why.caller 3");
  ASSERT_EQ(second.exit_code, 0);
  EXPECT_EQ(second.out, "\"[v2:3]\"\n");

  CliResult result = RunCli(cli + "--json why test.why.caller 3");
  ASSERT_EQ(result.exit_code, 0);
  const nlohmann::json why = nlohmann::json::parse(result.out);
  ASSERT_EQ(why["steps"].size(), 2u) << why.dump(1);
  EXPECT_EQ(why["steps"][0]["reason"], "dependency changed");
  const nlohmann::json& gone = why["steps"][1];
  EXPECT_EQ(gone["kind"], "gone");
  EXPECT_EQ(gone["task"], why["steps"][0]["cause"]);
  EXPECT_NE(gone["text"].get<std::string>().find(
                "it is test.why.label version 1, and this build has version 2 (a version bump)"),
            std::string::npos)
      << gone;
}

}  // namespace
