// A client library whose daemon goes away and comes back: the real turbined, stopped and
// started again on the same address while one Client lives on.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace {

using turbine::client::CallResult;
using turbine::client::Cancellation;
using turbine::client::Client;
using turbine::client::ConnectOptions;
using turbine::client::Int;
using turbine::client::MakeCallRequest;
using turbine::client::Str;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Client> Connect(const std::string& address, bool wait_for_ready = false,
                                std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(
      ConnectOptions{.address = address, .deadline = deadline, .wait_for_ready = wait_for_ready});
  EXPECT_TRUE(client.ok()) << client.status();
  return *std::move(client);
}

// Fib calls demo.fib(n); OK only if the answer is right.
absl::Status Fib(Client& client, int64_t n, int64_t expected) {
  absl::StatusOr<CallResult> result = client.Call("demo.fib", {Int(n)});
  if (!result.ok()) return result.status();
  if (!result->value.ok() || result->value->int_value() != expected) {
    return absl::InternalError("wrong answer");
  }
  return absl::OkStatus();
}

// Daemon runs turbined processes one after another on one data dir and address.
class Daemon {
 public:
  explicit Daemon(std::vector<std::string> args) : args_(std::move(args)) {}

  bool Start() {
    process_ = std::make_unique<DaemonProcess>();
    return process_->Start(args_);
  }
  int Stop(int signal) { return process_->Stop(signal); }
  const std::string& address() const { return process_->address(); }
  std::string log() const { return process_->log(); }

 private:
  std::vector<std::string> args_;
  std::unique_ptr<DaemonProcess> process_;
};

// Watcher runs client.Watch of input.get(key) on a thread and keeps the integers delivered.
class Watcher {
 public:
  Watcher(Client& client, const std::string& key)
      : Watcher(client, MakeCallRequest("input.get", {Str(key)})) {}
  Watcher(Client& client, turbine::v1::CallRequest request)
      : thread_([this, &client, request = std::move(request)] {
          absl::Status status = client.Watch(
              request,
              [this](const CallResult& result) {
                std::lock_guard lock(mu_);
                seen_.push_back(result.value.ok() ? result.value->int_value() : -1);
                changed_.notify_all();
                return true;
              },
              &cancel_);
          std::lock_guard lock(mu_);
          status_ = std::move(status);
          ended_ = true;
          changed_.notify_all();
        }) {}
  ~Watcher() { (void)Stop(); }

  // WaitFor waits (up to 60 s) until `count` values were delivered or the watch ended, and
  // returns the values.
  std::vector<int64_t> WaitFor(size_t count) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, std::chrono::seconds(60),
                      [&] { return seen_.size() >= count || ended_; });
    return seen_;
  }
  // Join waits for the watch to end by itself; returns its status.
  absl::Status Join() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    return status_;
  }
  absl::Status Stop() {
    cancel_.Cancel();
    return Join();
  }

 private:
  Cancellation cancel_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<int64_t> seen_;  // guarded by mu_
  absl::Status status_;        // guarded by mu_
  bool ended_ = false;         // guarded by mu_
  std::thread thread_;
};

// The first call after each restart must be answered: the connection to the daemon that
// went away is noticed as gone, not written to (gRPC, left alone, only looks at an idle
// connection every few seconds and would send the call into the dead one: "Broken pipe").
void FirstCallsAfterRestartsAreAnswered(Daemon& daemon, int signal) {
  constexpr int64_t kFib[] = {6765, 10946, 17711, 28657};  // fib(20) ... fib(23)
  std::unique_ptr<Client> client = Connect(daemon.address());
  ASSERT_TRUE(Fib(*client, 20, kFib[0]).ok());
  for (int restart = 1; restart <= 3; ++restart) {
    ASSERT_EQ(daemon.Stop(signal), signal == SIGKILL ? 128 + SIGKILL : 0);
    ASSERT_TRUE(daemon.Start()) << daemon.log();
    const absl::Status first = Fib(*client, 20 + restart, kFib[restart]);
    EXPECT_TRUE(first.ok()) << "signal " << signal << ", restart " << restart << ": " << first;
  }
}

TEST(Reconnect, AClientSurvivesRestartsOnItsUnixSocket) {
  TempDir dir;
  Daemon daemon({"--data-dir", dir.str()});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  FirstCallsAfterRestartsAreAnswered(daemon, SIGKILL);
  FirstCallsAfterRestartsAreAnswered(daemon, SIGTERM);
}

TEST(Reconnect, AClientSurvivesRestartsOnItsTcpPort) {
  TempDir dir;
  Daemon first({"--data-dir", dir.str(), "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(first.Start()) << first.log();
  const std::string address = first.address();  // the port chosen, kept for the restarts
  ASSERT_EQ(first.Stop(SIGTERM), 0);
  Daemon daemon({"--data-dir", dir.str(), "--listen", address});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  FirstCallsAfterRestartsAreAnswered(daemon, SIGKILL);
  FirstCallsAfterRestartsAreAnswered(daemon, SIGTERM);
}

// While no daemon answers, calls fail at once: they do not wait for the deadline (20 s here).
// And the first call once it is back succeeds, however long it was gone: gRPC's reconnect
// back-off (growing to 2 minutes by default) does not make it fail on.
TEST(Reconnect, CallsFailFastWhileTheDaemonIsDownAndTheFirstOneAfterSucceeds) {
  TempDir dir;
  Daemon daemon({"--data-dir", dir.str()});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  std::unique_ptr<Client> client = Connect(daemon.address());
  ASSERT_TRUE(Fib(*client, 20, 6765).ok());
  ASSERT_EQ(daemon.Stop(SIGTERM), 0);

  // Down for 4 s, called every 50 ms: long enough for back-off to grow past a restart.
  const auto down_until = Clock::now() + std::chrono::seconds(4);
  int calls = 0;
  while (Clock::now() < down_until) {
    const auto start = Clock::now();
    const absl::Status status = Fib(*client, 20, 6765);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "a call waited for a daemon";
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GT(calls, 10);

  ASSERT_TRUE(daemon.Start()) << daemon.log();
  const absl::Status first = Fib(*client, 21, 10946);
  EXPECT_TRUE(first.ok()) << first;
}

// A Watch lives through restarts: each time the daemon is back it watches on, delivers the
// result if it changed meanwhile, and does not deliver it again if it did not.
TEST(Reconnect, AWatchResumesAfterRestartsAndMissesNoChange) {
  TempDir dir;
  Daemon daemon({"--data-dir", dir.str()});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  std::unique_ptr<Client> setter = Connect(daemon.address());
  ASSERT_TRUE(setter->SetInputs({{"level", Int(1)}}).ok());
  std::unique_ptr<Client> client = Connect(daemon.address());
  Watcher watcher(*client, "level");
  ASSERT_EQ(watcher.WaitFor(1), std::vector<int64_t>{1});

  // Restarted with nothing changed: once the watch is back (the daemon answered its call),
  // the next change is the next value; 1 is not delivered twice.
  ASSERT_EQ(daemon.Stop(SIGTERM), 0);
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  const auto limit = Clock::now() + std::chrono::seconds(60);
  for (absl::StatusOr<turbine::v1::StatsReply> stats = setter->Stats();
       !(stats.ok() && stats->calls() >= 1) && Clock::now() < limit; stats = setter->Stats()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(setter->SetInputs({{"level", Int(2)}}).ok());
  EXPECT_EQ(watcher.WaitFor(2), (std::vector<int64_t>{1, 2}));

  // Changed while the watch was cut off: through another socket, before the daemon came
  // back on the one the watch knows.
  ASSERT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  {
    Daemon side({"--data-dir", dir.str(), "--listen", "unix:" + dir.str() + "/side.sock"});
    ASSERT_TRUE(side.Start()) << side.log();
    ASSERT_TRUE(Connect(side.address())->SetInputs({{"level", Int(3)}}).ok());
    ASSERT_EQ(side.Stop(SIGTERM), 0);
  }
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  EXPECT_EQ(watcher.WaitFor(3), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(watcher.Stop().ok());
}

// A watch the daemon accepted, whose daemon goes away before the first result (stopped, or
// killed), waits for it to come back like one answered, and gets its result then. Before,
// it ended at once (UNAVAILABLE), unlike a watch that had had a result.
TEST(Reconnect, AWatchWithoutAResultYetWaitsForItsDaemonToComeBack) {
  TempDir dir;
  Daemon daemon({"--data-dir", dir.str()});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  std::unique_ptr<Client> client = Connect(daemon.address());
  for (const int signal : {SIGTERM, SIGKILL}) {
    const int64_t key = signal;
    Watcher watcher(*client, MakeCallRequest("demo.busy", {Int(key), Int(3'000'000)}));
    std::this_thread::sleep_for(std::chrono::seconds(1));  // accepted, its body running
    daemon.Stop(signal);
    ASSERT_TRUE(daemon.Start()) << daemon.log();
    EXPECT_EQ(watcher.WaitFor(1), std::vector<int64_t>{key}) << "after " << strsignal(signal);
    EXPECT_TRUE(watcher.Stop().ok());
  }
}

// A daemon that does not come back within the deadline ends the watch; one that is waited
// for can still be cancelled at once.
TEST(Reconnect, AWatchWhoseDaemonStaysAwayEndsUnavailableOrIsCancelled) {
  TempDir dir;
  Daemon daemon({"--data-dir", dir.str()});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(Connect(daemon.address())->SetInputs({{"level", Int(1)}}).ok());
  std::unique_ptr<Client> impatient = Connect(daemon.address(), false, std::chrono::seconds(1));
  std::unique_ptr<Client> patient = Connect(daemon.address(), false, std::chrono::seconds(300));
  Watcher gives_up(*impatient, "level");
  Watcher cancelled(*patient, "level");
  ASSERT_EQ(gives_up.WaitFor(1).size(), 1u);
  ASSERT_EQ(cancelled.WaitFor(1).size(), 1u);

  const auto stopping = Clock::now();  // the watch may see the daemon go before Stop returns
  ASSERT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  const absl::Status status = gives_up.Join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("did not answer again within 1000 ms"), std::string::npos)
      << status;
  EXPECT_GE(Clock::now() - stopping, std::chrono::seconds(1));

  const auto cancelling = Clock::now();
  EXPECT_TRUE(cancelled.Stop().ok());
  EXPECT_LT(Clock::now() - cancelling, std::chrono::seconds(10));
}

// wait_for_ready (the CLI's --wait): a call waits for a daemon that is not there yet, up to
// its deadline.
TEST(Reconnect, CallsThatWaitForReadyWaitForTheDaemonUpToTheirDeadline) {
  TempDir dir;
  const std::string address = turbine::client::DefaultAddress(dir.str());
  const auto start = Clock::now();
  const absl::Status impatient =
      Fib(*Connect(address, true, std::chrono::milliseconds(300)), 20, 6765);
  EXPECT_EQ(impatient.code(), absl::StatusCode::kUnavailable) << impatient;
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));

  std::unique_ptr<Client> patient = Connect(address, true, std::chrono::seconds(60));
  std::promise<void> calling;
  absl::Status waited;
  turbine::testing::CliResult cli;
  std::thread caller([&] {
    calling.set_value();
    waited = Fib(*patient, 20, 6765);
  });
  std::thread cli_caller(
      [&] { cli = RunCli("--data-dir " + dir.str() + " --wait call demo.fib 20"); });
  calling.get_future().wait();
  Daemon daemon({"--data-dir", dir.str()});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  caller.join();
  cli_caller.join();
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(cli.exit_code, 0);
  EXPECT_EQ(cli.out, "6765\n");
}

}  // namespace
