// The real turbined with odd input: a file name that is not UTF-8 through the real CLI and
// the client library, and flags out of range, which must stop it with exit code 2.
#include <absl/strings/escaping.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

const std::string kBadName = "bad\xff\xfename";  // not UTF-8

TEST(BadInputDaemon, AFileNameThatIsNotUtf8ThroughTheCliAndTheClient) {
  TempDir dir;
  const std::string files = dir.str() + "/files";
  std::filesystem::create_directories(files);
  std::ofstream(files + "/" + kBadName) << "odd\n";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";

  // The CLI prints the name as JSON bytes ({"$bytes": base64}) ...
  const CliResult listing = RunCli(cli + "call fs.list " + files);
  EXPECT_EQ(listing.exit_code, 0) << listing.out;
  const std::string base64_name = absl::Base64Escape(kBadName);
  EXPECT_NE(listing.out.find("{\"$bytes\":\"" + base64_name + "\"}"), std::string::npos)
      << listing.out;
  // ... and takes the same form back as a path.
  const std::string path_arg =
      "'{\"$bytes\":\"" + absl::Base64Escape(files + "/" + kBadName) + "\"}'";
  const CliResult content = RunCli(cli + "call --raw fs.read " + path_arg);
  EXPECT_EQ(content.exit_code, 0);
  EXPECT_EQ(content.out, "odd\n");

  // The client library gets the exact bytes.
  using namespace turbine::client;
  auto client = Client::Connect(ConnectOptions{.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<CallResult> list = (*client)->Call("fs.list", {Str(files)});
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_TRUE(list->value.ok()) << list->value.status();
  ASSERT_EQ(list->value->list_value().items_size(), 1);
  bool found = false;
  for (const auto& entry : list->value->list_value().items(0).map_value().entries()) {
    if (entry.key() != "name") continue;
    const std::string* name = AsBytes(entry.value());
    ASSERT_NE(name, nullptr) << entry.value().DebugString();
    EXPECT_EQ(*name, kBadName);
    found = true;
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// ExitCodeOf starts turbined with `args` and returns its exit code, expecting it not to
// serve (one that serves anyway is stopped, and the test fails).
int ExitCodeOf(const std::vector<std::string>& args, std::string* log) {
  DaemonProcess daemon;
  if (daemon.Start(args)) {
    ADD_FAILURE() << "turbined served on " << daemon.address();
    daemon.Stop(SIGTERM);
    return -1;
  }
  const int code = daemon.Reap();
  *log = daemon.log();
  return code;
}

// A request with a string that is not UTF-8 is refused saying why, and leaves nothing in
// the daemon's log: protobuf's own line for each ("[libprotobuf ERROR ...] String field
// ... contains invalid UTF-8 data") let any client fill the log.
TEST(BadInputDaemon, RequestsThatAreNotUtf8LeaveNoLinesInTheLog) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto channel = grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Slice slice(std::string("\x0a\x06" "demo.\xff"));  // function: "demo.\xff"
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer reply;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, "/turbine.v1.Turbine/Call", grpc::StubOptions(), &request, &reply,
                   [&done](grpc::Status status) { done.set_value(std::move(status)); });
    const grpc::Status status = done.get_future().get();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("not valid UTF-8"), std::string::npos);
  }
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  EXPECT_EQ(daemon.log().find("protobuf"), std::string::npos) << daemon.log();
}

TEST(BadInputDaemon, OutOfRangeFlagsExitWithCodeTwo) {
  TempDir dir;
  std::string log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--workers", "100000"}, &log), 2) << log;
  EXPECT_NE(log.find("workers 100000 is out of range"), std::string::npos) << log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--listen", "127.0.0.1:99999"}, &log), 2) << log;
  EXPECT_NE(log.find("port must be a number from 0 to 65535"), std::string::npos) << log;
  // A byte count is named as given. Before: "Value 2147483648 not in range 1024 to ..." for
  // 2G, and "Value 8X not in range" for what is no size.
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--max-message-bytes", "2G"}, &log), 2) << log;
  EXPECT_NE(log.find("--max-message-bytes: '2G' is not from 1024 to 1073741824 bytes"),
            std::string::npos)
      << log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--reply-buffer-bytes", "8X"}, &log), 2) << log;
  EXPECT_NE(log.find("--reply-buffer-bytes: '8X' is not a size"), std::string::npos) << log;
}

// Before: "Value -1 not in range 0.000000 to 1797693134862315...", the largest double
// written out in 310 digits.
TEST(BadInputDaemon, ANegativeOrNonNumericCountIsRefusedPlainly) {
  TempDir dir;
  std::string log;
  for (const std::string flag :
       {"--workers", "--snapshot-interval-ms", "--max-connections", "--max-connection-idle-ms"}) {
    EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), flag, "-1"}, &log), 2) << log;
    EXPECT_NE(log.find(flag + ": '-1' is not a non-negative integer"), std::string::npos) << log;
    EXPECT_EQ(log.find("0.000000"), std::string::npos) << log;
  }
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--workers", "3000000000"}, &log), 2) << log;
  EXPECT_NE(log.find("--workers: '3000000000' is more than 2147483647"), std::string::npos)
      << log;
  const std::string config = dir.str() + "/turbined.toml";
  std::ofstream(config) << "workers = \"abc\"\n";
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--config", config}, &log), 2) << log;
  // Before, without the file: it read as the command line's.
  EXPECT_NE(
      log.find("the config file " + config + ": --workers: 'abc' is not a non-negative integer"),
      std::string::npos)
      << log;
  // Given on the command line, the same value is the command line's.
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--config", config, "--workers", "x"}, &log), 2);
  EXPECT_NE(log.find("--workers: 'x' is not a non-negative integer"), std::string::npos) << log;
  EXPECT_EQ(log.find("the config file"), std::string::npos) << log;
  // A good value on the command line does not hide the file's bad one. Before: it started,
  // and the next start without the flag (a service manager's restart) did not.
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--config", config, "--workers", "2"}, &log), 2);
  EXPECT_NE(
      log.find("the config file " + config + ": --workers: 'abc' is not a non-negative integer"),
      std::string::npos)
      << log;
  // What one setting needs of another, the command line may give: the file read alone is
  // not refused for it.
  std::ofstream(config, std::ios::trunc) << "shared-cache-mode = \"read\"\n";
  DaemonProcess needing;
  EXPECT_TRUE(needing.Start({"--data-dir", dir.str() + "/needing", "--config", config,
                             "--shared-cache", "redis://127.0.0.1:1"}))
      << needing.log();
  needing.Stop(SIGTERM);
  // A [section]: turbined's settings are top-level keys. Before: "a misspelt flag name?".
  std::ofstream(config, std::ios::trunc) << "[server]\nworkers = 2\n";
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--config", config}, &log), 2) << log;
  EXPECT_NE(log.find("its settings are top-level keys, in no [section]"), std::string::npos) << log;
}

// What CLI11's lenient reader let through: an array that never ends served both addresses,
// a string that never ends was taken as something else. An array over several lines, which
// CLI11 does not read, is refused for what it is. A valid file still starts.
TEST(BadInputDaemon, AConfigFileThatDoesNotParseIsRefusedNamingTheLine) {
  TempDir dir;
  const std::string config = dir.str() + "/turbined.toml";
  const std::string a = "unix:" + dir.str() + "/a.sock";
  const std::string b = "unix:" + dir.str() + "/b.sock";
  const std::vector<std::pair<std::string, std::string>> broken = {
      {"# settings\nlisten = [\"" + a + "\", \"" + b + "\"\n",
       "line 2: an array that does not end"},
      {"listen = [\n  \"" + a + "\"\n]\n", "line 1: an array that does not end on its line"},
      {"log-level = \"info\nworkers = 2\n", "line 1: a quoted string that does not end"},
      {"workers = 2]\n", "line 1: a ']' with no '['"},
      // Before: CLI11 cut the line at the '#' and a directory named `"/srv/a` was made; and
      // it kept an escape as written (a directory named `q\"x`).
      {"workers = 2\ndata-dir = \"/srv/a#b\"\n", "line 2: a '#' inside a quoted value"},
      {"data-dir = '/srv/a#b'\n", "line 1: a '#' inside a quoted value"},
      {"data-dir = \"/srv/q\\\"x\"\n", "line 1: a backslash inside a double-quoted value"},
      // Before: "--memory-limit: At Most 1 required but received 2", without the file.
      {"memory-limit = \"64M\"\nworkers = 2\nmemory-limit = \"32M\"\n",
       "line 3: memory-limit is set twice (first on line 1)"},
      // On the very next line, or after a blank one: before, CLI11's "received 2" again.
      {"memory-limit = \"64M\"\nmemory-limit = \"32M\"\n",
       "line 2: memory-limit is set twice (first on line 1)"},
      {"workers = 2\n\nworkers = 3\n", "line 3: workers is set twice (first on line 1)"},
      // Before: the second address was dropped without a word.
      {"listen = \"" + a + "\"\nworkers = 2\nlisten = \"" + b + "\"\n",
       "line 3: listen is set twice (first on line 1); several addresses go in one array"},
      // Binary junk given by mistake: before, "INI was not able to parse", without the file.
      {std::string("workers = 2\n\0\xff\xfe garbage\n", 24),
       "the config file " + config + " cannot be read: line 2: not UTF-8 text"}};
  std::string log;
  for (const auto& [text, error] : broken) {
    std::ofstream(config, std::ios::trunc) << text;
    EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str() + "/data", "--config", config}, &log), 2)
        << text << log;
    EXPECT_NE(log.find(error), std::string::npos) << text << log;
  }
  std::ofstream(dir.str() + "/token;\\x") << "a-token-to-send\n";
  std::ofstream(config, std::ios::trunc)
      << "# a comment with an unmatched [ and a quote \"\n"
      << "listen = [\"" << a << "\", \"" << b << "\"]  # both\n"
      << "log-level = 'info'  # the default\n"
      << "auth-token-file = '" << dir.str() << "/token;\\x'\n"  // ';' and '\' are themselves
      << "[default]\nworkers = 2\n";                            // CLI11's name for the top level
  DaemonProcess daemon;
  EXPECT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--config", config}))
      << daemon.log();
  // Start returns at the first address's line; the second's follows.
  EXPECT_TRUE(daemon.WaitForLog("turbined ready on " + b)) << daemon.log();
  daemon.Stop(SIGTERM);
  // A key again on the very next line is more values of it, as CLI11 reads it.
  std::ofstream(config, std::ios::trunc) << "listen = \"" << a << "\"\nlisten = \"" << b << "\"\n";
  DaemonProcess consecutive;
  EXPECT_TRUE(consecutive.Start({"--data-dir", dir.str() + "/data", "--config", config}))
      << consecutive.log();
  EXPECT_TRUE(consecutive.WaitForLog("turbined ready on " + b)) << consecutive.log();
}

// A namespace is in every shared cache key. Before, "" and "x{y}z" were taken: the second a
// Redis Cluster hash tag, all of the namespace's records on one node.
TEST(BadInputDaemon, ASharedCacheNamespaceThatCannotBeOneIsRefused) {
  TempDir dir;
  std::string log;
  for (const std::string name : {"", "x{y}z", "two words", "line\nbreak"}) {
    EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--shared-cache", "redis://127.0.0.1:1",
                          "--shared-cache-namespace", name},
                         &log),
              2)
        << name << log;
    EXPECT_NE(log.find("is not a namespace: printable ASCII, no spaces or braces"),
              std::string::npos)
        << log;
  }
}

// A file that never ends (/dev/zero) is read up to a bound. Before: turbined read it until
// memory ran out (5 GB in 10 s for a TLS file), or aborted on std::bad_alloc (exit 134).
TEST(BadInputDaemon, AFileThatNeverEndsIsRefusedWithCodeTwo) {
  TempDir dir;
  std::string log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--auth-token-file", "/dev/zero"}, &log), 2)
      << log;
  EXPECT_NE(log.find("larger than 64 KiB"), std::string::npos) << log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--listen", "127.0.0.1:0", "--tls-cert",
                        "/dev/zero", "--tls-key", "/dev/zero"},
                       &log),
            2)
      << log;
  EXPECT_NE(log.find("larger than 16 MiB"), std::string::npos) << log;
  // A pipe nobody writes to: before, turbined waited in the open for good, deaf to SIGTERM.
  const std::string fifo = dir.str() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--listen", "127.0.0.1:0", "--tls-cert", fifo,
                        "--tls-key", fifo},
                       &log),
            2)
      << log;
  EXPECT_NE(log.find("holds no PEM block"), std::string::npos) << log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--config", "/dev/zero"}, &log), 2) << log;
  EXPECT_NE(log.find("the config file /dev/zero cannot be read: larger than 1 MiB"),
            std::string::npos)
      << log;
}

// A client sends the token in a gRPC header, which cannot hold a line break: gRPC's clients
// abort on one. Before: turbined took a token file wrapped over two lines, which no client
// could then send.
TEST(BadInputDaemon, ATokenFileOverTwoLinesIsRefusedWithCodeTwo) {
  TempDir dir;
  const std::string token_file = dir.str() + "/token";
  std::ofstream(token_file) << std::string(76, 'A') << "\n" << std::string(12, 'B') << "==\n";
  std::string log;
  EXPECT_EQ(ExitCodeOf({"--data-dir", dir.str(), "--auth-token-file", token_file}, &log), 2)
      << log;
  EXPECT_NE(log.find("the token file " + token_file + " holds a line break at byte 77 of 91"),
            std::string::npos)
      << log;
}

}  // namespace
