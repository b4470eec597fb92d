// turbined under a flood of connections: with its open-file limit at 256, 300 connections
// that send nothing and are then closed must not lock the listener out (gRPC's own listener
// gave up after one EMFILE), over the unix socket and over TCP with a token; and an idle
// connection is closed by the daemon.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include "../server/requests.h"
#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::Int;
using turbine::testing::Request;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

constexpr int kOpenFileLimit = 256;
constexpr int kIdleConnections = 300;

// Markers of the daemon having met the flood: gRPC's listener giving up, or ours pausing.
const std::vector<std::string> kFloodMarkers = {"Failed accept4", "cannot accept a connection",
                                                "open connections at the limit"};

// ConnectRaw opens a socket to `address` ("unix:PATH" or "127.0.0.1:PORT") that sends
// nothing. The connect is non-blocking: a full backlog must not hang the test.
int ConnectRaw(const std::string& address) {
  if (address.starts_with("unix:")) {
    const std::string path = address.substr(5);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    return fd;
  }
  const size_t colon = address.rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  return fd;
}

// FloodThenClose opens kIdleConnections idle connections, waits until the daemon has met
// them (it logs that it paused, or gRPC that it gave up), then closes them all.
void FloodThenClose(DaemonProcess& daemon) {
  std::vector<int> sockets;
  for (int i = 0; i < kIdleConnections; ++i) sockets.push_back(ConnectRaw(daemon.address()));
  EXPECT_NE(daemon.WaitForAnyLog(kFloodMarkers), "") << daemon.log();
  for (int fd : sockets) ::close(fd);
}

// CallFib calls demo.fib(20) on a fresh channel, with `token` when not empty.
grpc::Status CallFib(const std::string& address, const std::string& token, v1::CallReply* reply) {
  auto stub =
      v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  // Long enough for a slow CI machine; the daemon that locked its listener out never answers.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  return stub->Call(&context, Request("demo.fib", {Int(20)}), reply);
}

TEST(DaemonConnections, IdleFloodOnTheUnixSocketDoesNotLockTheListenerOut) {
  TempDir dir;
  DaemonProcess daemon;
  daemon.LimitOpenFiles(kOpenFileLimit);
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  FloodThenClose(daemon);
  v1::CallReply reply;
  const grpc::Status status = CallFib(daemon.address(), "", &reply);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << daemon.log();
  EXPECT_EQ(reply.value().int_value(), 6765);
  EXPECT_EQ(daemon.log().find("Failed accept4"), std::string::npos) << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(DaemonConnections, IdleFloodOverTcpWithATokenDoesNotLockTheListenerOut) {
  TempDir dir;
  const std::string token_file = dir.str() + "/token";
  std::ofstream(token_file) << "let-me-in\n";
  DaemonProcess daemon;
  daemon.LimitOpenFiles(kOpenFileLimit);
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--listen", "127.0.0.1:0",
                            "--auth-token-file", token_file}))
      << daemon.log();
  FloodThenClose(daemon);
  v1::CallReply reply;
  const grpc::Status status = CallFib(daemon.address(), "let-me-in", &reply);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << daemon.log();
  EXPECT_EQ(reply.value().int_value(), 6765);
  EXPECT_EQ(CallFib(daemon.address(), "", &reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// OwnerSetsAndFlushes sets an input three times and flushes over `address`, each within
// 5 s: every set is written through the store's log, and the flush writes a snapshot.
void OwnerSetsAndFlushes(const std::string& address, const DaemonProcess& daemon) {
  auto stub = v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  auto context = [](grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context->AddMetadata("authorization", "Bearer let-me-in");
  };
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext set;
    context(&set);
    v1::SetInputsRequest request;
    v1::InputEntry* entry = request.add_inputs();
    entry->set_key("during-the-flood");
    entry->mutable_value()->set_int_value(round);
    v1::SetInputsReply reply;
    const grpc::Status status = stub->SetInputs(&set, request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << daemon.log();
  }
  grpc::ClientContext flush;
  context(&flush);
  v1::FlushReply reply;
  const grpc::Status status = stub->Flush(&flush, v1::FlushRequest(), &reply);
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << daemon.log();
}

// OwnerAndFlood is a daemon limited to kOpenFileLimit descriptors that serves TCP with a
// token and the owner's unix socket, and a flood of idle TCP connections to it.
struct OwnerAndFlood {
  TempDir dir;
  std::string unix_address = "unix:" + dir.str() + "/owner.sock";
  DaemonProcess daemon;
  std::vector<int> sockets;

  void Start(std::vector<std::string> extra = {}) {
    const std::string token_file = dir.str() + "/token";
    std::ofstream(token_file) << "let-me-in\n";
    daemon.LimitOpenFiles(kOpenFileLimit);
    std::vector<std::string> args = {"--data-dir", dir.str() + "/data", "--listen",
                                     "127.0.0.1:0", "--listen", unix_address,
                                     "--auth-token-file", token_file};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(daemon.Start(args)) << daemon.log();
  }
  // Flood opens kIdleConnections over TCP and waits until the daemon is at its bound.
  void Flood() {
    for (int i = 0; i < kIdleConnections; ++i) sockets.push_back(ConnectRaw(daemon.address()));
    EXPECT_NE(daemon.WaitForAnyLog({"open connections at the limit"}), "") << daemon.log();
  }
  ~OwnerAndFlood() {
    for (int fd : sockets) ::close(fd);
  }
};

// A bound asked beyond what the open-file limit holds is lowered, and a flood over TCP
// leaves the unix socket room: its owner is served and the store writes, while the flood
// lasts. Before, the flood took every descriptor: the owner could not connect, and the
// store, failing to open its next log file, stopped writing until a restart.
TEST(DaemonConnections, ATcpFloodLeavesTheOwnerAndTheStoreTheirDescriptors) {
  OwnerAndFlood t;
  ASSERT_NO_FATAL_FAILURE(t.Start({"--max-connections", "100000"}));
  EXPECT_NE(t.daemon.log().find("--max-connections 100000 is more than half the open file "
                                "limit (256): lowered to 128"),
            std::string::npos)
      << t.daemon.log();
  t.Flood();
  OwnerSetsAndFlushes(t.unix_address, t.daemon);
  for (int fd : std::exchange(t.sockets, {})) ::close(fd);
  v1::CallReply reply;
  const grpc::Status status = CallFib(t.daemon.address(), "let-me-in", &reply);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << t.daemon.log();
  EXPECT_EQ(reply.value().int_value(), 6765);
  EXPECT_EQ(t.daemon.log().find("Too many open files"), std::string::npos) << t.daemon.log();
  EXPECT_EQ(t.daemon.Stop(SIGTERM), 0) << t.daemon.log();
}

// At the default bound a flood over TCP, which anyone who reaches the port can send,
// token or not, leaves the owner-only unix socket room. Before, it took the whole bound and
// the owner waited until flooding connections closed.
TEST(DaemonConnections, ATcpFloodAtTheBoundLeavesTheUnixSocketRoom) {
  OwnerAndFlood t;
  ASSERT_NO_FATAL_FAILURE(t.Start());
  t.Flood();
  OwnerSetsAndFlushes(t.unix_address, t.daemon);
  EXPECT_EQ(t.daemon.Stop(SIGTERM), 0) << t.daemon.log();
}

TEST(DaemonConnections, TheOpenFileLimitAndTheConnectionBoundAreLogged) {
  TempDir dir;
  DaemonProcess daemon;
  daemon.LimitOpenFiles(kOpenFileLimit);
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  EXPECT_NE(daemon.log().find("open file limit 256; at most 128 connections"), std::string::npos)
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// Before: under about 20 descriptors the start failed at random places: RocksDB could not
// open CURRENT (and the database, taken for unusable, was moved aside with its inputs), or
// gRPC could not make an eventfd and the process aborted.
TEST(DaemonConnections, AnOpenFileLimitTooLowIsRefusedBeforeAnythingOpens) {
  TempDir dir;
  for (int limit : {8, 19, 63}) {
    DaemonProcess daemon;
    daemon.LimitOpenFiles(limit);
    ASSERT_FALSE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
    EXPECT_EQ(daemon.Reap(), 1) << daemon.log();
    EXPECT_NE(daemon.log().find("cannot start: the open file limit is " + std::to_string(limit) +
                                " (ulimit -n; LimitNOFILE= under systemd): turbined needs at "
                                "least 64"),
              std::string::npos)
        << daemon.log();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "db")) << "nothing opened";
}

TEST(DaemonConnections, AnIdleConnectionIsClosedByTheDaemon) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-connection-idle-ms", "100"}))
      << daemon.log();
  const int fd = ConnectRaw(daemon.address());
  // The daemon ends the connection: first a GOAWAY frame, then the end of the stream. The
  // wait is a bound on a hang, not a measure: idle closing is what the test checks.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd poll_fd{fd, POLLIN, 0};
    if (::poll(&poll_fd, 1, 1000) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    closed = n == 0 || (n < 0 && errno != EAGAIN);
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "the idle connection is still open\n" << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(DaemonConnections, AtTheConnectionBoundANewClientWaitsForAFreeSlot) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-connections", "2"})) << daemon.log();
  const int first = ConnectRaw(daemon.address());
  const int second = ConnectRaw(daemon.address());
  const int third = ConnectRaw(daemon.address());  // the bound's: it waits in the backlog
  EXPECT_NE(daemon.WaitForAnyLog({"open connections at the limit: 2"}), "") << daemon.log();
  ::close(first);
  ::close(second);
  v1::CallReply reply;
  const grpc::Status status = CallFib(daemon.address(), "", &reply);
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << daemon.log();
  ::close(third);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// A CLI call takes one connection: before, it opened a second to read the daemon's
// progress, and at the bound with one slot free whichever came second waited for good: the
// call, which then gave up "no progress for 3000 ms" as if the daemon had done nothing.
// Here the bound (3) leaves room for the connection held and two more: a call that took
// two would reach it, which the daemon logs.
TEST(DaemonConnections, ACliCallTakesOneConnection) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-connections", "3"})) << daemon.log();
  const int held = ConnectRaw(daemon.address());
  const turbine::testing::CliResult run = turbine::testing::RunCli(
      "--connect " + daemon.address() + " --timeout-ms 3000 call demo.fib 6 2>&1");
  EXPECT_EQ(run.exit_code, 0) << run.out << daemon.log();
  EXPECT_EQ(run.out, "8\n");
  ::close(held);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  EXPECT_EQ(daemon.log().find("open connections at the limit"), std::string::npos)
      << daemon.log();
}

// CountOf is how many times `part` is in `text`.
size_t CountOf(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// Before: clients coming and going at the bound logged the limit, then "accepting
// connections again", several times a second.
TEST(DaemonConnections, TheBoundIsLoggedOnceAMinuteAsClientsComeAndGo) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-connections", "1"})) << daemon.log();
  int held = ConnectRaw(daemon.address());
  ASSERT_TRUE(daemon.WaitForLog("open connections at the limit: 1")) << daemon.log();
  ::close(held);
  ASSERT_TRUE(daemon.WaitForLog("accepting connections again")) << daemon.log();
  held = ConnectRaw(daemon.address());  // at the bound again, within the minute
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ::close(held);
  EXPECT_EQ(CountOf(daemon.log(), "open connections at the limit"), 1u) << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// Before: "cannot reach turbined (is it running? start it with ...)", from a daemon that was
// running and had taken the connection into its backlog.
TEST(DaemonConnections, ACliCallThatWaitedAtTheBoundSaysSo) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-connections", "1"})) << daemon.log();
  const int held = ConnectRaw(daemon.address());
  EXPECT_NE(daemon.WaitForAnyLog({"open connections at the limit: 1"}), "") << daemon.log();
  const turbine::testing::CliResult run = turbine::testing::RunCli(
      "--connect " + daemon.address() + " --timeout-ms 1500 ping 2>&1");
  EXPECT_EQ(run.exit_code, 3) << run.out;
  EXPECT_NE(run.out.find("did not answer in time"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("at its --max-connections bound"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("is it running?"), std::string::npos) << run.out;
  // A watch has no deadline of its own, but its connection has --timeout-ms as a call's
  // does. Before: it waited for gRPC's 20 s connect timeout, then said "cannot reach
  // turbined ... is it running?".
  const auto start = std::chrono::steady_clock::now();
  const turbine::testing::CliResult watch = turbine::testing::RunCli(
      "--connect " + daemon.address() + " --timeout-ms 1500 watch demo.fib 3 2>&1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << watch.out;
  EXPECT_EQ(watch.exit_code, 3) << watch.out;
  EXPECT_NE(watch.out.find("did not answer in time"), std::string::npos) << watch.out;
  EXPECT_EQ(watch.out.find("is it running?"), std::string::npos) << watch.out;
  ::close(held);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

}  // namespace
