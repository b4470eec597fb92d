// turbined as a process: started, called over its unix socket, stopped with SIGTERM and
// SIGKILL, restarted, and sent hostile input. Nothing here runs in-process.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../server/requests.h"
#include "../storage/temp_dir.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::Int;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

std::unique_ptr<v1::Turbine::Stub> Connect(const std::string& address) {
  return v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

grpc::Status CallOnce(v1::Turbine::Stub& stub, const v1::CallRequest& request,
                      v1::CallReply* reply, const std::string& token = "") {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  return stub.Call(&context, request, reply);
}

v1::StatsReply Stats(v1::Turbine::Stub& stub) {
  v1::StatsReply stats;
  grpc::ClientContext context;
  stub.Stats(&context, v1::StatsRequest(), &stats);
  return stats;
}

TEST(Daemon, SigtermFlushesAndARestartAnswersFromDisk) {
  TempDir dir;
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--snapshot-interval-ms", "0"}))
        << daemon.log();
    EXPECT_EQ(daemon.address(), "unix:" + dir.str() + "/turbined.sock");
    auto stub = Connect(daemon.address());
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(60)}), &reply).ok());
    EXPECT_EQ(reply.value().int_value(), 1548008755920);
    EXPECT_EQ(reply.source(), v1::SOURCE_EXECUTED);
    // No background snapshots: only the shutdown flush can have saved the result.
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(60)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 1548008755920);
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK);
  const v1::StatsReply stats = Stats(*stub);
  EXPECT_EQ(stats.executions(), 0u);
  // Nothing changed since the shutdown snapshot: the root is trusted, and none of the 60
  // tasks below it is even loaded.
  EXPECT_EQ(stats.restored_tasks(), 1u);
  EXPECT_EQ(stats.trusted_restored_tasks(), 1u);
  EXPECT_EQ(daemon.Stop(SIGINT), 0) << daemon.log();
}

// A data dir turbined makes is its owner's alone; one that exists keeps its mode, said if
// others may read it. Before: `--data-dir` of a shared directory (mode 1777, as /tmp)
// replaced its mode with 0700, sticky bit and all, without a word.
TEST(Daemon, AnExistingDataDirKeepsItsModeAndANewOneIsPrivate) {
  namespace fs = std::filesystem;
  TempDir dir;
  const fs::path shared = dir.path() / "shared";
  fs::create_directories(shared);
  fs::permissions(shared, fs::perms::all | fs::perms::sticky_bit, fs::perm_options::replace);
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", shared.string()})) << daemon.log();
  EXPECT_EQ(fs::status(shared).permissions(), fs::perms::all | fs::perms::sticky_bit);
  EXPECT_NE(daemon.log().find("data dir " + shared.string() + " is open to others (mode 1777)"),
            std::string::npos)
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();

  const fs::path made = dir.path() / "made" / "here";
  DaemonProcess fresh;
  ASSERT_TRUE(fresh.Start({"--data-dir", made.string()})) << fresh.log();
  EXPECT_EQ(fs::status(made).permissions(), fs::perms::owner_all);
  EXPECT_EQ(fresh.log().find("is open to others"), std::string::npos) << fresh.log();
  EXPECT_EQ(fresh.Stop(SIGTERM), 0) << fresh.log();
}

// A size without a unit is bytes: a limit meant as 512 MiB but given as 512 is said to be
// too small at start. Before, the daemon started without a word and evicted everything it
// could, and said that the resident set stayed over the limit only 2 s later.
TEST(Daemon, AMemoryLimitTooSmallToMeetIsSaidAtStart) {
  TempDir dir;
  DaemonProcess bytes;
  ASSERT_TRUE(bytes.Start({"--data-dir", dir.str(), "--memory-limit", "512"})) << bytes.log();
  EXPECT_NE(bytes.log().find("--memory-limit 512 bytes is below what turbined needs idle"),
            std::string::npos)
      << bytes.log();
  EXPECT_EQ(bytes.Stop(SIGTERM), 0) << bytes.log();

  DaemonProcess megabytes;
  ASSERT_TRUE(megabytes.Start({"--data-dir", dir.str(), "--memory-limit", "512M"}))
      << megabytes.log();
  EXPECT_EQ(megabytes.log().find("is below what turbined needs idle"), std::string::npos)
      << megabytes.log();
  EXPECT_EQ(megabytes.Stop(SIGTERM), 0) << megabytes.log();
}

// Before: SIGUSR1 or SIGUSR2 (a log rotation's postrotate sends one by habit) or SIGALRM
// killed the daemon at once, without its last snapshot, leaving its socket behind.
TEST(Daemon, SigusrIsLoggedAndIgnored) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  for (int signal : {SIGUSR1, SIGUSR2, SIGALRM}) {
    daemon.Signal(signal);
    EXPECT_TRUE(daemon.WaitForLog(std::string(strsignal(signal)) + " received: ignored"))
        << daemon.log();
  }
  EXPECT_EQ(daemon.ReapWithin(std::chrono::milliseconds(200)), -1) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(30)}), &reply).ok());
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// SIGHUP (the terminal it ran in closed) stops it as SIGTERM does, with the last snapshot.
// Before, it killed the daemon: exit 129, the snapshot lost, the socket left behind.
TEST(Daemon, SighupStopsItAsSigtermDoes) {
  TempDir dir;
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--snapshot-interval-ms", "0"}))
        << daemon.log();
    auto stub = Connect(daemon.address());
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(30)}), &reply).ok());
    EXPECT_EQ(reply.source(), v1::SOURCE_EXECUTED);
    // Twice, as a closing terminal sends it: the second does not cut the stop short.
    daemon.Signal(SIGHUP);
    EXPECT_EQ(daemon.Stop(SIGHUP), 0) << daemon.log();
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "turbined.sock"));
  }
  {
    // Under nohup (SIGHUP ignored, inherited across exec) a hangup leaves it running.
    struct sigaction ignore {
    }, before{};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &ignore, &before);
    DaemonProcess daemon;
    const bool started = daemon.Start({"--data-dir", dir.str()});
    sigaction(SIGHUP, &before, nullptr);
    ASSERT_TRUE(started) << daemon.log();
    daemon.Signal(SIGHUP);
    EXPECT_EQ(daemon.ReapWithin(std::chrono::milliseconds(500)), -1) << daemon.log();
    auto stub = Connect(daemon.address());
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(30)}), &reply).ok());
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(30)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 832040);
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// `turbine graph` before the first call after a restart brings the task (and its cone) into
// memory without reading it. The call after still says where its answer came from: disk,
// and only the first read after the restore says so.
TEST(Daemon, AGraphBeforeTheFirstCallAfterARestartLeavesItFromDisk) {
  TempDir dir;
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
    auto stub = Connect(daemon.address());
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(20)}), &reply).ok());
    ASSERT_EQ(reply.source(), v1::SOURCE_EXECUTED);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  {
    v1::GraphRequest request;
    *request.mutable_call() = Request("demo.fib", {Int(20)});
    v1::GraphReply graph;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Graph(&context, request, &graph).ok());
    ASSERT_EQ(graph.nodes_size(), 21);
  }
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(20)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 6765);
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK);
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(20)}), &reply).ok());
  EXPECT_EQ(reply.source(), v1::SOURCE_MEMORY);
  // A task the graph loaded and nothing read yet: its first call is from disk too.
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(19)}), &reply).ok());
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK);
  EXPECT_EQ(Stats(*stub).executions(), 0u);
  EXPECT_EQ(daemon.Stop(SIGINT), 0) << daemon.log();
}

// SetCells sets spreadsheet cells (sheet.eval reads them: numbers, or formula text).
void SetCells(v1::Turbine::Stub& stub, const std::vector<std::pair<std::string, v1::Value>>& cells) {
  v1::SetInputsRequest set;
  for (const auto& [key, value] : cells) {
    auto* entry = set.add_inputs();
    entry->set_key(key);
    *entry->mutable_value() = value;
  }
  v1::SetInputsReply reply;
  grpc::ClientContext context;
  ASSERT_TRUE(stub.SetInputs(&context, set, &reply).ok());
}

TEST(Daemon, AnInputSetJustBeforeAStopReachesOnlyWhatReadsIt) {
  TempDir dir;
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
    auto stub = Connect(daemon.address());
    SetCells(*stub, {{"total", Str("price * 2")}, {"price", Int(5)},
                     {"other", Str("base + 1")}, {"base", Int(3)}});
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("sheet.eval", {Str("total")}), &reply).ok());
    ASSERT_EQ(reply.value().int_value(), 10);
    ASSERT_TRUE(CallOnce(*stub, Request("sheet.eval", {Str("other")}), &reply).ok());
    ASSERT_EQ(reply.value().int_value(), 4);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  {
    DaemonProcess daemon;  // sets a cell, reads nothing, stops
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
    auto stub = Connect(daemon.address());
    SetCells(*stub, {{"price", Int(7)}});
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  // It never read "price": served from disk as it was, nothing below it loaded.
  ASSERT_TRUE(CallOnce(*stub, Request("sheet.eval", {Str("other")}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 4);
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK);
  v1::StatsReply stats = Stats(*stub);
  EXPECT_EQ(stats.trusted_restored_tasks(), 1u);
  EXPECT_EQ(stats.restored_tasks(), 1u);
  // It did: it sees the change.
  ASSERT_TRUE(CallOnce(*stub, Request("sheet.eval", {Str("total")}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 14);
  EXPECT_EQ(reply.source(), v1::SOURCE_EXECUTED);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(Daemon, AfterSigkillInputsSurviveAndResultsAreCorrect) {
  TempDir dir;
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--snapshot-interval-ms", "20"}))
        << daemon.log();
    auto stub = Connect(daemon.address());
    v1::SetInputsRequest set;
    auto* entry = set.add_inputs();
    entry->set_key("kept");
    *entry->mutable_value() = Int(77);
    v1::SetInputsReply set_reply;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->SetInputs(&context, set, &set_reply).ok());
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(70)}), &reply).ok());
    // A snapshot that holds the result: acknowledged by Flush (background snapshots are
    // covered by the storage tests).
    v1::FlushReply flushed;
    grpc::ClientContext flush_context;
    ASSERT_TRUE(stub->Flush(&flush_context, v1::FlushRequest(), &flushed).ok());
    EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("input.get", {Str("kept")}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 77) << "an acknowledged input was lost";
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(70)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 190392490709135);
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK) << "the snapshot before the kill was lost";
}

// A task id a client was given, and an input set to it, name that task for good: a daemon
// killed before any snapshot wrote the task must not give the id to another task after.
TEST(Daemon, ARefGivenOutBeforeASigkillNamesItsTaskForGood) {
  TempDir dir;
  const std::string a = dir.str() + "/a.txt";
  const std::string b = dir.str() + "/b.txt";
  std::ofstream(a) << "AAAA";
  std::ofstream(b) << "BBBBBBBB";
  uint64_t given = 0;
  {
    DaemonProcess daemon;
    // No periodic snapshot: nothing written before the kill but the input.
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--snapshot-interval-ms", "0"}))
        << daemon.log();
    auto stub = Connect(daemon.address());
    v1::CallReply reply;
    ASSERT_TRUE(CallOnce(*stub, Request("fs.path", {Str(a)}), &reply).ok());
    given = reply.ref().task();
    ASSERT_NE(given, 0u);
    v1::SetInputsRequest set;
    auto* entry = set.add_inputs();
    entry->set_key("x");
    entry->mutable_value()->mutable_ref_value()->set_task(given);
    v1::SetInputsReply set_reply;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->SetInputs(&context, set, &set_reply).ok());
    EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("fs.path", {Str(b)}), &reply).ok());
  EXPECT_NE(reply.ref().task(), given) << "the id of fs.path(a) now names fs.path(b)";
  ASSERT_TRUE(CallOnce(*stub, Request("input.get", {Str("x")}), &reply).ok());
  EXPECT_EQ(reply.value().ref_value().task(), given) << "an acknowledged input was lost";
  // No snapshot wrote the task, but the input's own write stored what it refers to: the
  // id still names fs.path(a).
  v1::CallRequest read = Request("Path.read", {});
  read.mutable_this_ref()->set_task(given);
  ASSERT_TRUE(CallOnce(*stub, read, &reply).ok());
  ASSERT_FALSE(reply.has_error()) << reply.error().message();
  EXPECT_EQ(reply.value().has_bytes_value() ? reply.value().bytes_value()
                                            : reply.value().string_value(),
            "AAAA");
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(Daemon, HostileInputNeverTakesItDown) {
  TempDir dir;
  const std::string token_file = dir.str() + "/token";
  std::ofstream(token_file) << "let-me-in\n";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--auth-token-file", token_file,
                            "--max-message-bytes", "65536"}))
      << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;

  // Garbage bytes straight onto the socket, then a connection closed mid-handshake.
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = daemon.address().substr(5);
    std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    std::string garbage(1000 + attempt * 5000, '\0');
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + attempt);
    (void)::write(fd, garbage.data(), attempt == 4 ? 3 : garbage.size());
    ::close(fd);
  }

  EXPECT_EQ(CallOnce(*stub, Request("demo.fib", {Int(9)}), &reply).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallOnce(*stub, Request("demo.fib", {Int(9)}), &reply, "guess").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallOnce(*stub, Request("no.such", {}), &reply, "let-me-in").error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CallOnce(*stub, Request("demo.fib", {Str("nine")}), &reply, "let-me-in").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CallOnce(*stub, Request("input.get", {Str(std::string(200000, 'k'))}), &reply,
                     "let-me-in")
                .error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(9)}), &reply, "let-me-in").ok());
  EXPECT_EQ(reply.value().int_value(), 34);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(Daemon, ThirtyTwoClientsAtOnceGetCorrectAnswers) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  constexpr int kClients = 32;
  constexpr int kCallsEach = 1000;
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      // Each client its own connection; keys overlap across clients so that some calls
      // race to create the same task and others hit what another client computed.
      auto stub = Connect(daemon.address());
      for (int i = 0; i < kCallsEach; ++i) {
        const int64_t key = (c * 7 + i) % 500;
        v1::CallReply reply;
        if (!CallOnce(*stub, Request("demo.busy", {Int(key), Int(0)}), &reply).ok()) {
          ++failed;
        } else if (reply.value().int_value() != key) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  auto stub = Connect(daemon.address());
  const v1::StatsReply stats = Stats(*stub);
  EXPECT_EQ(stats.calls(), static_cast<uint64_t>(kClients * kCallsEach));
  EXPECT_EQ(stats.executions(), 500u) << "each distinct call executes exactly once";
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(Daemon, ASecondDaemonOnTheSameDataDirIsRefused) {
  TempDir dir;
  DaemonProcess first;
  ASSERT_TRUE(first.Start({"--data-dir", dir.str()})) << first.log();
  DaemonProcess second;
  EXPECT_FALSE(second.Start({"--data-dir", dir.str()}));
  EXPECT_NE(second.Reap(), 0);
  EXPECT_NE(second.log().find("another turbined"), std::string::npos) << second.log();

  auto stub = Connect(first.address());  // the first one is unharmed
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(12)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 144);
  EXPECT_EQ(first.Stop(SIGTERM), 0) << first.log();
}

// A --listen socket path taken by another process's socket (a second daemon on another
// data dir) is refused, as a TCP port in use is: before, the second daemon removed the
// first one's socket and served in its place, and removed the path when it stopped.
TEST(Daemon, ASocketPathAnotherDaemonServesIsRefused) {
  TempDir first_dir;
  TempDir second_dir;
  const std::string socket = "unix:" + first_dir.str() + "/shared.sock";
  DaemonProcess first;
  ASSERT_TRUE(first.Start({"--data-dir", first_dir.str(), "--listen", socket})) << first.log();
  DaemonProcess second;
  // A failed start has exited (SIGKILL then only reaps it); a hung one is killed.
  EXPECT_FALSE(second.Start({"--data-dir", second_dir.str(), "--listen", socket}))
      << "a second daemon took the socket over";
  EXPECT_EQ(second.Stop(SIGKILL), 1) << second.log();
  EXPECT_NE(second.log().find("another process accepts connections on it"), std::string::npos)
      << second.log();

  auto stub = Connect(first.address());  // the first one still serves it
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(12)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 144);
  EXPECT_EQ(first.Stop(SIGTERM), 0) << first.log();
}

// A --listen path that is not a socket is the user's file, left alone: before, it was
// removed for the socket (and the socket removed at shutdown).
TEST(Daemon, AListenPathThatIsNotASocketIsLeftAlone) {
  TempDir dir;
  const std::filesystem::path file = dir.path() / "thesis.txt";
  std::ofstream(file) << "my thesis\n";
  DaemonProcess daemon;
  EXPECT_FALSE(daemon.Start({"--data-dir", (dir.path() / "data").string(), "--listen",
                             "unix:" + file.string()}))
      << "it listens on the file's path";
  EXPECT_EQ(daemon.Stop(SIGKILL), 2) << daemon.log();
  EXPECT_NE(daemon.log().find("exists and is not a socket"), std::string::npos) << daemon.log();
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "my thesis");
}

// A socket nobody accepts on (a daemon killed with SIGKILL leaves one) is replaced.
TEST(Daemon, ASocketLeftByADeadDaemonIsReplaced) {
  TempDir dir;
  DaemonProcess killed;
  ASSERT_TRUE(killed.Start({"--data-dir", dir.str()})) << killed.log();
  EXPECT_EQ(killed.Stop(SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(std::filesystem::is_socket(dir.path() / "turbined.sock"));
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  ASSERT_TRUE(CallOnce(*stub, Request("demo.fib", {Int(12)}), &reply).ok());
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// The log's socket address is the one a user would type: a data dir given as "./x" or
// with ".." is spelled normally.
TEST(Daemon, TheSocketAddressItLogsIsNormal) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/./sub/../data"})) << daemon.log();
  EXPECT_EQ(daemon.address(), "unix:" + dir.str() + "/data/turbined.sock");
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// Where it serves is said at every level but `off`; other lines keep their level. Before,
// under --log-level warn, "turbined ready on" never came, and whatever waited for it waited
// for good.
TEST(Daemon, TheReadyLineComesUnderAQuietLogLevel) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--log-level", "warn"})) << daemon.log();
  EXPECT_FALSE(daemon.address().empty());
  EXPECT_EQ(daemon.log().find("checked 0 observations"), std::string::npos)
      << "an info line under --log-level warn\n"
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(Daemon, ShutdownRpcStopsItCleanly) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::ShutdownReply reply;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Shutdown(&context, v1::ShutdownRequest(), &reply).ok());
  EXPECT_EQ(daemon.Reap(), 0) << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "turbined.sock"));
  // Said, as a signal's stop is. Before: only "stopped; writing the last snapshot".
  EXPECT_NE(daemon.log().find("Shutdown requested by a client"), std::string::npos) << daemon.log();
}

}  // namespace
