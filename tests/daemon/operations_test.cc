// turbined as an operator runs it: metrics on an address it logs, bad settings refused with
// exit code 2, settings from a config file (and the shipped example config).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "../server/requests.h"
#include "../server/scrape.h"
#include "../storage/temp_dir.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::HttpGet;
using turbine::testing::Int;
using turbine::testing::Request;
using turbine::testing::Sample;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

constexpr int kExitBadConfig = 2;

// MetricsAddress is the address in the log line "turbined metrics on http://ADDR/metrics".
std::string MetricsAddress(const std::string& log) {
  std::smatch match;
  if (!std::regex_search(log, match,
                         std::regex("turbined metrics on http://([0-9.]+:[0-9]+)/metrics"))) {
    return "";
  }
  return match[1];
}

grpc::Status CallOnce(const std::string& address, const v1::CallRequest& request,
                      v1::CallReply* reply) {
  auto stub =
      v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return stub->Call(&context, request, reply);
}

TEST(DaemonOperations, MetricsAreServedOnTheAddressItLogs) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--metrics-listen", "127.0.0.1:0"}))
      << daemon.log();
  const std::string metrics = MetricsAddress(daemon.log());
  ASSERT_FALSE(metrics.empty()) << daemon.log();
  ASSERT_NE(metrics, "127.0.0.1:0") << "the port chosen";

  turbine::testing::HttpReply page = HttpGet(metrics);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(Sample(page.body, R"(turbine_calls_total{source="executed"})"), 0);

  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(daemon.address(), Request("demo.fib", {Int(15)}), &reply).ok());
  ASSERT_TRUE(CallOnce(daemon.address(), Request("demo.fib", {Int(15)}), &reply).ok());
  page = HttpGet(metrics);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(Sample(page.body, R"(turbine_calls_total{source="executed"})"), 1);
  EXPECT_EQ(Sample(page.body, R"(turbine_calls_total{source="memory"})"), 1);
  EXPECT_EQ(Sample(page.body, "turbine_executions_total"), 16);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(DaemonOperations, ABadMetricsAddressIsAClearErrorAndExitCode2) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0.0.0.0:9464", "refusing to serve metrics off this machine"},
      {"9464", "expected HOST:PORT"},
      {"127.0.0.1:70000", "the port must be a number"},
  };
  for (const auto& [address, message] : cases) {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir.str(), "--metrics-listen", address}));
    EXPECT_EQ(daemon.Reap(), kExitBadConfig) << daemon.log();
    EXPECT_NE(daemon.log().find("metrics address '" + address + "': " + message), std::string::npos)
        << daemon.log();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "db")) << "refused before opening the cache";
}

TEST(DaemonOperations, SettingsComeFromTheConfigFileAndFlagsWin) {
  TempDir dir;
  const std::string config = dir.str() + "/turbined.toml";
  std::ofstream(config) << "# set up by the test\n"
                        << "data-dir = \"" << dir.str() << "/from-file\"\n"
                        << "listen = [\"127.0.0.1:0\"]\n"
                        << "metrics-listen = \"127.0.0.1:0\"\n"
                        << "snapshot-interval-ms = 0\n";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--config", config, "--data-dir", dir.str() + "/from-flag"}))
      << daemon.log();
  EXPECT_TRUE(daemon.address().starts_with("127.0.0.1:")) << daemon.address();
  EXPECT_FALSE(MetricsAddress(daemon.log()).empty()) << daemon.log();
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(daemon.address(), Request("demo.fib", {Int(10)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 55);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "from-flag" / "db")) << "the flag won";
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "from-file"));
}

TEST(DaemonOperations, AMisspeltOrMissingConfigFileIsRefused) {
  TempDir dir;
  const std::string config = dir.str() + "/turbined.toml";
  std::ofstream(config) << "data-dir = \"" << dir.str() << "\"\nsnapshot-intervall-ms = 10\n";
  {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--config", config}));
    EXPECT_EQ(daemon.Reap(), kExitBadConfig);
    EXPECT_NE(daemon.log().find("snapshot-intervall-ms"), std::string::npos) << daemon.log();
  }
  DaemonProcess daemon;
  EXPECT_FALSE(daemon.Start({"--config", dir.str() + "/nowhere.toml"}));
  EXPECT_EQ(daemon.Reap(), kExitBadConfig);
  EXPECT_NE(daemon.log().find("nowhere.toml"), std::string::npos) << daemon.log();
}

// Before: "INI was not able to parse memory-limt", naming neither the file nor the problem.
TEST(DaemonOperations, AnUnknownKeyInTheConfigFileIsNamedWithTheFile) {
  TempDir dir;
  const std::string config = dir.str() + "/turbined.toml";
  std::ofstream(config) << "data-dir = \"" << dir.str() << "\"\nmemory-limt = \"64M\"\n";
  DaemonProcess daemon;
  EXPECT_FALSE(daemon.Start({"--config", config}));
  EXPECT_EQ(daemon.Reap(), kExitBadConfig);
  EXPECT_NE(daemon.log().find("the config file " + config +
                              " sets memory-limt, which is not a setting of turbined"),
            std::string::npos)
      << daemon.log();
  EXPECT_EQ(daemon.log().find("INI was not able"), std::string::npos) << daemon.log();

  std::ofstream(config) << "[daemon]\nworkers = 2\n";
  DaemonProcess sectioned;
  EXPECT_FALSE(sectioned.Start({"--config", config}));
  EXPECT_EQ(sectioned.Reap(), kExitBadConfig);
  EXPECT_NE(sectioned.log().find("sets [daemon], which is not a setting"), std::string::npos)
      << sectioned.log();

  // An empty data directory, on the command line or in the file, is a setting that cannot
  // work: exit 2 like the others (it was 1, an error found only when opening it).
  std::ofstream(config) << "data-dir = \"\"\n";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--data-dir", ""}, std::vector<std::string>{"--config", config}}) {
    DaemonProcess empty;
    EXPECT_FALSE(empty.Start(args));
    EXPECT_EQ(empty.Reap(), kExitBadConfig) << empty.log();
    EXPECT_NE(empty.log().find("the data directory must be named"), std::string::npos)
        << empty.log();
  }
}

// FlagsOfTurbined lists turbined's long options as `turbined --help` prints them.
std::set<std::string> FlagsOfTurbined() {
  std::set<std::string> flags;
  FILE* pipe = ::popen((std::string(TURBINED_PATH) + " --help").c_str(), "r");
  if (pipe == nullptr) return flags;
  std::string help;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) help.append(buffer.data(), n);
  ::pclose(pipe);
  const std::regex flag("--([a-z][a-z-]+)");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), flag); it != std::sregex_iterator();
       ++it) {
    flags.insert((*it)[1]);
  }
  return flags;
}

TEST(DaemonOperations, TheExampleConfigDocumentsEveryFlagAndStarts) {
  const std::string example = std::string(TURBINE_DEPLOY_DIR) + "/turbined.toml";
  std::ifstream in(example);
  ASSERT_TRUE(in) << example;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::set<std::string> flags = FlagsOfTurbined();
  ASSERT_TRUE(flags.contains("data-dir") && flags.contains("metrics-listen"));
  for (const std::string& flag : flags) {
    if (flag == "help" || flag == "version" || flag == "config") continue;
    // Set ("key = ") or shown commented out ("# key = ").
    EXPECT_TRUE(std::regex_search(text, std::regex("(^|\n)(# )?" + flag + " = ")))
        << example << " does not document --" << flag;
  }

  // The example parses and turbined runs with it; paths a test cannot use are overridden.
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(
      daemon.Start({"--config", example, "--data-dir", dir.str(), "--listen",
                    "unix:" + dir.str() + "/turbined.sock", "--metrics-listen", "127.0.0.1:0"}))
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

}  // namespace
