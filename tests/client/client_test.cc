// The client library against a stand-in daemon over a real Unix socket.
#include "turbine/client/client.h"

#include <absl/strings/escaping.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "fake_turbine.h"
#include "turbine/client/call_stream.h"
#include "turbine/client/values.h"

namespace turbine::client {
namespace {

using testing::FakeTurbine;
using testing::TempDir;

std::unique_ptr<Client> ConnectTo(const std::string& address, std::string token = "",
                                  std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
  ConnectOptions options;
  options.address = address;
  options.token = std::move(token);
  options.deadline = deadline;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return *std::move(client);
}

class ClientTest : public ::testing::Test {
 protected:
  TempDir dir_;
  FakeTurbine daemon_{dir_.path()};
  std::unique_ptr<Client> client_ = ConnectTo(daemon_.address());
};

TEST(ClientDefaultsTest, DefaultAddressIsTheSocketInTheAbsoluteDataDir) {
  EXPECT_EQ(DefaultAddress("/var/lib/turbine/"), "unix:/var/lib/turbine/turbined.sock");
  std::string relative = DefaultAddress("./.turbine");
  EXPECT_EQ(relative.rfind("unix:/", 0), 0u) << relative;
  EXPECT_EQ(relative.find("/./"), std::string::npos) << relative;
  EXPECT_TRUE(relative.ends_with("/.turbine/turbined.sock")) << relative;
}

TEST(ClientDefaultsTest, BadOptionsAreRefused) {
  ConnectOptions options;
  options.deadline = std::chrono::milliseconds(0);
  EXPECT_EQ(Client::Connect(options).status().code(), absl::StatusCode::kInvalidArgument);
}

// The token travels in a header, and gRPC aborts the process on a header value that is not
// printable ASCII. Before: a token read from a file wrapped over two lines killed the caller
// with SIGABRT on its first call.
TEST(ClientDefaultsTest, ATokenGrpcCannotSendIsRefused) {
  for (const std::string& token :
       std::vector<std::string>{"a\nb", "a\tb", "caf\xC3\xA9", std::string("a\0b", 3)}) {
    ConnectOptions options;
    options.token = token;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    ASSERT_FALSE(client.ok()) << absl::CEscape(token);
    EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(client.status().message().find("printable ASCII"), absl::string_view::npos)
        << client.status();
  }
  ConnectOptions options;
  options.token = "a\nb";
  EXPECT_NE(Client::Connect(options).status().message().find("a line break at byte 2 of 3"),
            absl::string_view::npos);
}

TEST_F(ClientTest, CallReturnsTheValueItsTaskAndWhereItCameFrom) {
  absl::StatusOr<CallResult> result = client_->Call("echo", {Int(30), Str("x")});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->value.ok()) << result->value.status();
  ASSERT_NE(AsList(*result->value), nullptr);
  EXPECT_EQ(AsList(*result->value)->items_size(), 2);
  EXPECT_EQ(AsInt(AsList(*result->value)->items(0)), 30);
  EXPECT_EQ(result->ref.task(), 7u);
  EXPECT_EQ(result->source, v1::SOURCE_MEMORY);
  EXPECT_EQ(result->micros, 5u);
}

TEST_F(ClientTest, ReceiverGoesAsThisRef) {
  absl::StatusOr<CallResult> result = client_->Call("this", {}, MakeTaskRef(12, "Path", 2));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->value.ok());
  ASSERT_NE(AsRef(*result->value), nullptr);
  EXPECT_EQ(AsRef(*result->value)->task(), 12u);
  EXPECT_EQ(AsRef(*result->value)->cell_index(), 2u);
}

TEST_F(ClientTest, AFunctionErrorIsAResultNotATransportFailure) {
  absl::StatusOr<CallResult> result = client_->Call("fail", {});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->value.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(result->value.status().message(), "boom");
  EXPECT_EQ(result->ref.task(), 7u);
}

TEST_F(ClientTest, AnUnknownFunctionIsNotFound) {
  absl::StatusOr<CallResult> result = client_->Call("nope", {});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status().message(), "unknown function nope");
}

TEST_F(ClientTest, ASlowCallHitsTheDeadlineAndSaysSo) {
  std::unique_ptr<Client> impatient =
      ConnectTo(daemon_.address(), "", std::chrono::milliseconds(100));
  ASSERT_TRUE(impatient->Ping().ok());  // connected: a deadline now is the call's fault
  EXPECT_EQ(impatient->Call("slow", {}).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, SetInputsSendsEveryPairAndReportsChanges) {
  absl::StatusOr<uint32_t> changed = client_->SetInputs({{"a", Int(1)}, {"b", Str("x")}});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 2u);
  std::vector<v1::InputEntry> sent = daemon_.last_inputs();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].key(), "a");
  EXPECT_EQ(AsInt(sent[0].value()), 1);
  EXPECT_EQ(*AsString(sent[1].value()), "x");
}

TEST_F(ClientTest, StatsFunctionsFlushAndShutdown) {
  absl::StatusOr<v1::StatsReply> stats = client_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tasks(), 3u);
  absl::StatusOr<std::vector<v1::FunctionInfo>> functions = client_->ListFunctions();
  ASSERT_TRUE(functions.ok()) << functions.status();
  ASSERT_EQ(functions->size(), 1u);
  EXPECT_EQ((*functions)[0].name(), "demo.fib");
  EXPECT_EQ(client_->Flush().value_or(0), 4u);
  EXPECT_TRUE(client_->Shutdown().ok());
  EXPECT_TRUE(daemon_.shutdown_requested());
}

TEST_F(ClientTest, PingIsOkOnlyWhileServing) {
  EXPECT_TRUE(client_->Ping().ok());
  daemon_.SetServing(false);
  absl::Status not_serving = client_->Ping();
  EXPECT_EQ(not_serving.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(not_serving.message().find("NOT_SERVING"), absl::string_view::npos) << not_serving;
}

TEST(ClientTokenTest, TheTokenTravelsAsABearerHeader) {
  TempDir dir;
  FakeTurbine daemon(dir.path(), "s3cret");
  EXPECT_TRUE(ConnectTo(daemon.address(), "s3cret")->Call("echo", {}).ok());
  EXPECT_EQ(ConnectTo(daemon.address(), "wrong")->Call("echo", {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ConnectTo(daemon.address())->Stats().status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(ClientUnreachableTest, NoDaemonIsUnavailable) {
  TempDir dir;
  std::unique_ptr<Client> client = ConnectTo(DefaultAddress(dir.path()));
  EXPECT_EQ(client->Call("echo", {}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->Ping().code(), absl::StatusCode::kUnavailable);
}

// A watch has no deadline of its own. Before: with wait_for_ready and no daemon, it waited
// for one forever.
TEST(ClientUnreachableTest, AWatchWaitingForReadyGivesUpAtTheDeadline) {
  TempDir dir;
  std::unique_ptr<Client> client =
      Client::Connect({.address = DefaultAddress(dir.path()),
                       .deadline = std::chrono::milliseconds(500),
                       .wait_for_ready = true})
          .value();
  Cancellation cancel;
  std::future<absl::Status> watch = std::async(std::launch::async, [&] {
    return client->Watch(MakeCallRequest("echo", {}), [](const CallResult&) { return true; },
                         &cancel);
  });
  const bool ended = watch.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  if (!ended) cancel.Cancel();  // a bound for the failure, so the test ends
  ASSERT_TRUE(ended) << "the watch still waits for a daemon";
  EXPECT_EQ(watch.get().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ClientTest, CallStreamMatchesOutOfOrderRepliesById) {
  std::unique_ptr<CallStream> stream = client_->OpenCallStream().value();
  std::map<uint64_t, int64_t> sent;
  for (int64_t i = 0; i < 100; ++i) {
    absl::StatusOr<uint64_t> id = stream->Send(MakeCallRequest("echo", {Int(i * 10)}));
    ASSERT_TRUE(id.ok()) << id.status();
    sent[*id] = i * 10;
  }
  EXPECT_EQ(sent.size(), 100u);  // every request got its own id
  bool saw_out_of_order = false;
  uint64_t previous_id = 0;
  for (int received = 0; received < 100; ++received) {
    std::optional<CallResult> reply = stream->Next();
    ASSERT_TRUE(reply.has_value()) << "after " << received;
    ASSERT_TRUE(reply->value.ok());
    ASSERT_EQ(sent.count(reply->id), 1u) << reply->id;
    EXPECT_EQ(AsInt(AsList(*reply->value)->items(0)), sent[reply->id]);
    sent.erase(reply->id);
    saw_out_of_order |= reply->id < previous_id;
    previous_id = reply->id;
  }
  EXPECT_TRUE(saw_out_of_order);  // the fake answers pairs in reverse
  EXPECT_TRUE(stream->Close().ok());
  EXPECT_FALSE(stream->Next().has_value());
}

// Calls sent faster than the connection takes them leave in shared CallBatch messages: with
// the daemon not reading, HTTP/2 flow control stops the writes after its window (a few
// thousand single calls at most), and everything sent meanwhile goes out in a few batches.
TEST_F(ClientTest, CallStreamBatchesPipelinedCalls) {
  daemon_.HoldStreamReads(true);
  std::unique_ptr<CallStream> stream = client_->OpenCallStream().value();
  constexpr int kCalls = 10'000;
  for (int64_t i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(i)})).ok());
  }
  daemon_.HoldStreamReads(false);
  std::set<uint64_t> answered;
  for (int received = 0; received < kCalls; ++received) {
    std::optional<CallResult> reply = stream->Next();
    ASSERT_TRUE(reply.has_value()) << "after " << received;
    ASSERT_TRUE(reply->value.ok());
    EXPECT_EQ(AsInt(AsList(*reply->value)->items(0)), static_cast<int64_t>(reply->id) - 1);
    answered.insert(reply->id);
  }
  EXPECT_EQ(answered.size(), static_cast<size_t>(kCalls));
  EXPECT_TRUE(stream->Close().ok());
  EXPECT_LE(daemon_.batches_read(), kCalls / 2);
}

TEST_F(ClientTest, CallStreamCloseWaitsForTheRepliesStillOwed) {
  std::unique_ptr<CallStream> stream = client_->OpenCallStream().value();
  for (int64_t i = 0; i < 3; ++i) ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(i)})).ok());
  // The fake holds the third reply until the stream is half-closed: only Close frees it.
  ASSERT_TRUE(stream->Close().ok());
  int replies = 0;
  while (stream->Next().has_value()) ++replies;
  EXPECT_EQ(replies, 3);
}

TEST_F(ClientTest, CallStreamDeliversToACallbackAndKeepsGoingAfterAFunctionError) {
  std::mutex mu;
  std::vector<CallResult> replies;
  std::unique_ptr<CallStream> stream =
      client_
          ->OpenCallStream([&](CallResult result) {
            std::lock_guard lock(mu);
            replies.push_back(std::move(result));
          })
          .value();
  ASSERT_TRUE(stream->Send(MakeCallRequest("fail", {})).ok());
  ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(1)})).ok());
  ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(2)})).ok());
  ASSERT_TRUE(stream->Close().ok());  // returns once every reply was delivered
  std::lock_guard lock(mu);
  ASSERT_EQ(replies.size(), 3u);
  int errors = 0;
  for (const CallResult& reply : replies) errors += reply.value.ok() ? 0 : 1;
  EXPECT_EQ(errors, 1);
}

// call_stream.h allows Close from the reply callback. Before: Close waited there for the
// stream to end, which it does only after the callback returns: it hung for the deadline,
// then for good.
TEST_F(ClientTest, CallStreamCanBeClosedFromItsReplyCallback) {
  std::atomic<CallStream*> self{nullptr};
  std::atomic<int> replies{0};
  std::promise<absl::Status> closed;
  std::unique_ptr<CallStream> stream =
      client_
          ->OpenCallStream([&](CallResult) {
            if (replies.fetch_add(1) == 0) closed.set_value(self.load()->Close());
          })
          .value();
  self = stream.get();
  ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(1)})).ok());
  ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(2)})).ok());
  std::future<absl::Status> close_in_callback = closed.get_future();
  if (close_in_callback.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    (void)stream.release();  // stuck in gRPC's callback: destroying it would wait for good
    FAIL() << "Close called from the reply callback does not return";
  }
  EXPECT_TRUE(close_in_callback.get().ok());
  EXPECT_EQ(stream->Send(MakeCallRequest("echo", {Int(3)})).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The stream ends by itself, after the reply still owed.
  EXPECT_TRUE(stream->Close().ok());
  EXPECT_EQ(replies.load(), 2);
}

TEST_F(ClientTest, CallStreamRefusesSendsAfterClose) {
  std::unique_ptr<CallStream> stream = client_->OpenCallStream().value();
  ASSERT_TRUE(stream->Close().ok());
  EXPECT_EQ(stream->Send(MakeCallRequest("echo", {})).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, CallStreamCanBeDroppedWithoutClose) {
  std::unique_ptr<CallStream> stream = client_->OpenCallStream().value();
  ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {})).ok());
  stream.reset();  // must neither hang nor crash
  SUCCEED();
}

// Released records on which thread the reply callback that owns it was destroyed.
class Released {
 public:
  Released(std::atomic<int>* on_owner, std::atomic<int>* elsewhere)
      : owner_(std::this_thread::get_id()), on_owner_(on_owner), elsewhere_(elsewhere) {}
  ~Released() { ++*(std::this_thread::get_id() == owner_ ? on_owner_ : elsewhere_); }

 private:
  const std::thread::id owner_;
  std::atomic<int>* const on_owner_;
  std::atomic<int>* const elsewhere_;
};

// Once its Client is gone, a stream holds the last reference to the connection. It must
// be released on the thread that destroys the stream, by the time the destructor returns:
// released on the gRPC thread that ran the stream's last callback, the channel's
// destruction made gRPC join that thread from itself and use its freed completion queue
// (an abort, "assertion failed: prior > 0", about once in a few thousand streams).
TEST(ClientStreamLifetimeTest, AStreamIsReleasedOnTheThreadThatDestroysIt) {
  TempDir dir;
  FakeTurbine daemon(dir.path());
  std::atomic<int> on_owner{0}, elsewhere{0};
  constexpr int kStreams = 300;
  for (int i = 0; i < kStreams; ++i) {
    std::unique_ptr<Client> client = ConnectTo(daemon.address());
    auto released = std::make_shared<Released>(&on_owner, &elsewhere);
    std::unique_ptr<CallStream> stream =
        client->OpenCallStream([released](CallResult) {}).value();
    released.reset();
    ASSERT_TRUE(stream->Send(MakeCallRequest("echo", {Int(i)})).ok());
    ASSERT_TRUE(stream->Close().ok());
    client.reset();
    stream.reset();
    ASSERT_EQ(on_owner.load() + elsewhere.load(), i + 1) << "stream " << i << " outlived its end";
  }
  EXPECT_EQ(elsewhere.load(), 0);
}

TEST(ClientUnreachableTest, CallStreamToNoDaemonEndsUnavailable) {
  TempDir dir;
  std::unique_ptr<CallStream> stream =
      ConnectTo(DefaultAddress(dir.path()))->OpenCallStream().value();
  (void)stream->Send(MakeCallRequest("echo", {}));  // may be refused already: fine
  EXPECT_FALSE(stream->Next().has_value());
  EXPECT_EQ(stream->Close().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ClientTest, WatchStopsWhenTheCallbackSaysSo) {
  std::vector<int64_t> seen;
  absl::Status status = client_->Watch(MakeCallRequest("forever", {}), [&](const CallResult& r) {
    seen.push_back(AsInt(*r.value).value_or(-1));
    return seen.size() < 2;
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
}

TEST_F(ClientTest, WatchEndsWhenTheDaemonEndsTheStream) {
  std::vector<int64_t> seen;
  absl::Status status = client_->Watch(MakeCallRequest("finite", {}), [&](const CallResult& r) {
    seen.push_back(AsInt(*r.value).value_or(-1));
    return true;
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
}

TEST_F(ClientTest, WatchCanBeCancelledFromAnotherThread) {
  Cancellation cancel;
  std::promise<void> third_value;
  std::thread canceller([&] {
    third_value.get_future().wait();
    cancel.Cancel();
  });
  int seen = 0;
  absl::Status status = client_->Watch(
      MakeCallRequest("forever", {}),
      [&](const CallResult&) {
        if (++seen == 3) third_value.set_value();
        return true;  // only the other thread can end this watch
      },
      &cancel);
  canceller.join();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(seen, 3);
}

TEST_F(ClientTest, AWatchCancelledBeforehandReturnsAtOnce) {
  Cancellation cancel;
  cancel.Cancel();
  absl::Status status =
      client_->Watch(MakeCallRequest("forever", {}), [](const CallResult&) { return true; },
                     &cancel);
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace turbine::client
