// The protocol over a real unix socket, against an in-process Server: calls and their
// sources, bad requests and their status codes, inputs, watches and streams.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server_fixture.h"

namespace {

using turbine::testing::Int;
using turbine::testing::LiveServer;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

TEST(Protocol, ACallExecutesOnceThenAnswersFromMemory) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;

  v1::CallReply first;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(30)}), &first).ok());
  EXPECT_EQ(first.value().int_value(), 832040);
  EXPECT_EQ(first.source(), v1::SOURCE_EXECUTED);
  EXPECT_NE(first.ref().task(), 0u);

  v1::CallReply second;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(30)}), &second).ok());
  EXPECT_EQ(second.value().int_value(), 832040);
  EXPECT_EQ(second.source(), v1::SOURCE_MEMORY);
  EXPECT_EQ(second.ref().task(), first.ref().task());
}

// Before: every flush said the last snapshot's count, also one with nothing to write.
TEST(Protocol, AFlushCountsWhatItWrote) {
  TempDir dir;
  turbine::server::ServerOptions options;
  options.snapshot_interval = std::chrono::milliseconds(0);  // only flushes write
  LiveServer live(dir.str(), options);
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(10)}), &reply).ok());
  auto flush = [&] {
    grpc::ClientContext context;
    v1::FlushReply flushed;
    EXPECT_TRUE(live.stub->Flush(&context, v1::FlushRequest(), &flushed).ok());
    return flushed.tasks_written();
  };
  EXPECT_EQ(flush(), 11u);  // demo.fib(0..10)
  EXPECT_EQ(flush(), 0u);
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(12)}), &reply).ok());
  EXPECT_EQ(flush(), 2u);
}

TEST(Protocol, BadRequestsGetClearStatusCodes) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;

  grpc::Status unknown = live.Call(Request("demo.nope", {Int(1)}), &reply);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.error_message().find("demo.nope"), std::string::npos);

  grpc::Status arity = live.Call(Request("demo.busy", {Int(1)}), &reply);
  EXPECT_EQ(arity.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(arity.error_message().find("takes 2 argument"), std::string::npos)
      << arity.error_message();

  grpc::Status type = live.Call(Request("demo.busy", {Int(1), Str("soon")}), &reply);
  EXPECT_EQ(type.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(type.error_message().find("argument 2 (micros: i64)"), std::string::npos)
      << type.error_message();

  v1::CallRequest with_this = Request("demo.fib", {Int(3)});
  with_this.mutable_this_ref()->set_task(1);
  EXPECT_EQ(live.Call(with_this, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // The daemon still serves after all of that.
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(10)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 55);
}

TEST(Protocol, AFunctionErrorIsAResultNotAFailedRpc) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(-1)}), &reply).ok());
  ASSERT_TRUE(reply.has_error());
  EXPECT_EQ(reply.error().code(), static_cast<int>(grpc::StatusCode::UNKNOWN));
  EXPECT_NE(reply.error().message().find("n must be >= 0"), std::string::npos);
}

TEST(Protocol, InputsAreSetAtomicallyAndReadBack) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;

  v1::SetInputsRequest set;
  auto* a = set.add_inputs();
  a->set_key("a");
  *a->mutable_value() = Int(5);
  auto* b = set.add_inputs();
  b->set_key("b");
  *b->mutable_value() = Str("five");
  v1::SetInputsReply set_reply;
  grpc::ClientContext context;
  ASSERT_TRUE(live.stub->SetInputs(&context, set, &set_reply).ok());
  EXPECT_EQ(set_reply.changed(), 2u);

  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("input.get", {Str("a")}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 5);
  ASSERT_TRUE(live.Call(Request("input.get", {Str("b")}), &reply).ok());
  EXPECT_EQ(reply.value().string_value(), "five");
  ASSERT_TRUE(live.Call(Request("input.get", {Str("unset")}), &reply).ok());
  EXPECT_TRUE(reply.has_error());
}

// A Value with no kind set is none of the kinds a value is. Before, an input was stored as
// null from one (also inside a list), while a call's typed parameter refused it.
TEST(Protocol, AnInputOfAnEmptyValueIsRefused) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::Value list;
  *list.mutable_list_value()->add_items() = Int(1);
  list.mutable_list_value()->add_items();  // empty
  for (const auto& [value, where] :
       std::vector<std::pair<v1::Value, std::string>>{{v1::Value(), ""}, {list, "item 1: "}}) {
    v1::SetInputsRequest set;
    auto* entry = set.add_inputs();
    entry->set_key("e");
    *entry->mutable_value() = value;
    v1::SetInputsReply set_reply;
    grpc::ClientContext context;
    const grpc::Status status = live.stub->SetInputs(&context, set, &set_reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message(), "input 'e': " + where +
                                          "expected a value of some kind (null is null_value), "
                                          "got an empty value");
  }
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("input.get", {Str("e")}), &reply).ok());
  EXPECT_EQ(reply.error().message(), "input 'e' is not set");
}

TEST(Protocol, InputsAreDeletedAtomicallyAndAnEmptyKeyIsRefused) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::SetInputsRequest set;
  for (const char* key : {"a", "b"}) {
    auto* entry = set.add_inputs();
    entry->set_key(key);
    *entry->mutable_value() = Int(5);
  }
  {
    v1::SetInputsReply set_reply;
    grpc::ClientContext context;
    ASSERT_TRUE(live.stub->SetInputs(&context, set, &set_reply).ok());
  }
  v1::DeleteInputsRequest request;
  request.add_keys("a");
  request.add_keys("");
  {
    v1::DeleteInputsReply deleted;
    grpc::ClientContext context;
    EXPECT_EQ(live.stub->DeleteInputs(&context, request, &deleted).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("input.get", {Str("a")}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 5);  // the whole batch was refused

  request.set_keys(1, "b");
  request.add_keys("never.set");
  {
    v1::DeleteInputsReply deleted;
    grpc::ClientContext context;
    ASSERT_TRUE(live.stub->DeleteInputs(&context, request, &deleted).ok());
    EXPECT_EQ(deleted.deleted(), 2u);
  }
  for (const char* key : {"a", "b"}) {
    ASSERT_TRUE(live.Call(Request("input.get", {Str(key)}), &reply).ok());
    EXPECT_EQ(reply.error().message(), "input '" + std::string(key) + "' is not set");
  }
}

TEST(Protocol, AWatchSeesTheNewValueAfterSetInputs) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  auto set = [&](int64_t value) {
    v1::SetInputsRequest request;
    auto* entry = request.add_inputs();
    entry->set_key("w");
    *entry->mutable_value() = Int(value);
    v1::SetInputsReply reply;
    grpc::ClientContext context;
    return live.stub->SetInputs(&context, request, &reply).ok();
  };
  ASSERT_TRUE(set(1));

  grpc::ClientContext context;
  auto reader = live.stub->Watch(&context, Request("input.get", {Str("w")}));
  v1::CallReply reply;
  ASSERT_TRUE(reader->Read(&reply));
  EXPECT_EQ(reply.value().int_value(), 1);

  ASSERT_TRUE(set(1));  // equal: no message
  ASSERT_TRUE(set(2));
  ASSERT_TRUE(reader->Read(&reply));
  EXPECT_EQ(reply.value().int_value(), 2) << "the equal value must not have been sent";
  context.TryCancel();
  while (reader->Read(&reply)) {
  }
}

// A client that cancels a stream while its calls are still running: their executions are
// cancelled (nobody else waits for them), whatever answers still come are dropped without
// touching a finished stream, and nothing was cached for the cancelled calls.
TEST(Protocol, AStreamCancelledWithCallsInFlightIsSafe) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  {
    grpc::ClientContext context;
    auto stream = live.stub->CallStream(&context);
    for (int i = 0; i < 3; ++i) {
      v1::CallRequest request = Request("demo.busy", {Int(1000 + i), Int(200'000)});
      request.set_id(static_cast<uint64_t>(i) + 1);
      ASSERT_TRUE(stream->Write(request));
    }
    // Cancel only once the server has the calls (their tasks exist, their bodies spin).
    const auto started = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (live.server->engine().Stats().tasks < 3 && std::chrono::steady_clock::now() < started) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_GE(live.server->engine().Stats().tasks, 3u);
    context.TryCancel();
    stream->Finish();
  }
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(10)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 55);
  // A cancelled call left no error behind: the next caller gets the value.
  ASSERT_TRUE(live.Call(Request("demo.busy", {Int(1000), Int(200'000)}), &reply).ok());
  EXPECT_FALSE(reply.has_error()) << reply.error().message();
  EXPECT_EQ(reply.value().int_value(), 1000);
}

TEST(Protocol, ManyCallsInFlightOnOneStream) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  grpc::ClientContext context;
  auto stream = live.stub->CallStream(&context);
  constexpr int kCalls = 1000;
  std::thread writer([&] {
    for (int i = 0; i < kCalls; ++i) {
      v1::CallRequest request = Request("demo.busy", {Int(i % 100), Int(0)});
      request.set_id(static_cast<uint64_t>(i) + 1);
      if (!stream->Write(request)) return;
    }
    stream->WritesDone();
  });
  std::vector<int> answered(kCalls, 0);
  v1::CallReply reply;
  int replies = 0;
  while (stream->Read(&reply)) {
    ++replies;
    ASSERT_GE(reply.id(), 1u);
    ASSERT_LE(reply.id(), static_cast<uint64_t>(kCalls));
    const int i = static_cast<int>(reply.id()) - 1;
    ++answered[static_cast<size_t>(i)];
    EXPECT_EQ(reply.value().int_value(), i % 100);
  }
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(replies, kCalls);
  for (int count : answered) ASSERT_EQ(count, 1);
}

TEST(Protocol, HealthIsServingAndFunctionsAreListed) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  auto health = grpc::health::v1::Health::NewStub(live.channel);
  grpc::health::v1::HealthCheckResponse status;
  grpc::ClientContext context;
  ASSERT_TRUE(health->Check(&context, grpc::health::v1::HealthCheckRequest(), &status).ok());
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  v1::ListFunctionsReply functions;
  grpc::ClientContext list_context;
  ASSERT_TRUE(live.stub->ListFunctions(&list_context, v1::ListFunctionsRequest(), &functions).ok());
  bool found_busy = false;
  for (const v1::FunctionInfo& fn : functions.functions()) {
    if (fn.name() != "demo.busy") continue;
    found_busy = true;
    ASSERT_EQ(fn.params_size(), 2);
    EXPECT_EQ(fn.params(0).name(), "key");
    EXPECT_EQ(fn.params(1).type(), "i64");
  }
  EXPECT_TRUE(found_busy);
}

TEST(Protocol, AnAuthTokenIsRequiredWhenConfigured) {
  TempDir dir;
  LiveServer live(dir.str(), turbine::server::ServerOptions{.auth_token = "s3cret"});
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  EXPECT_EQ(live.Call(Request("demo.fib", {Int(5)}), &reply).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(live.Call(Request("demo.fib", {Int(5)}), &reply, "wrong").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(5)}), &reply, "s3cret").ok());
  EXPECT_EQ(reply.value().int_value(), 5);
  // The scheme's name in any case, as the status page takes it; the token exactly.
  for (const char* authorization : {"bearer s3cret", "BEARER s3cret", "Bearer S3CRET", "Bearer",
                                    "Basic s3cret"}) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", authorization);
    const bool accepted = live.stub->Call(&context, Request("demo.fib", {Int(5)}), &reply).ok();
    EXPECT_EQ(accepted, std::string_view(authorization).ends_with("s3cret") &&
                            !std::string_view(authorization).starts_with("Basic"))
        << authorization;
  }
  // The token once: two headers are refused, whichever order the right one comes in.
  // Before, only the first was looked at.
  for (const auto& [first, second] :
       {std::pair{"Bearer s3cret", "Bearer wrong"}, std::pair{"Bearer wrong", "Bearer s3cret"},
        std::pair{"Bearer s3cret", "Bearer s3cret"}}) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", first);
    context.AddMetadata("authorization", second);
    EXPECT_EQ(live.stub->Call(&context, Request("demo.fib", {Int(5)}), &reply).error_code(),
              grpc::StatusCode::UNAUTHENTICATED)
        << first << ", " << second;
  }
}

// A token no client could send (gRPC carries it in a header: printable ASCII only) is
// refused at start; before, the server started, and no client could ever authenticate.
TEST(Protocol, AnAuthTokenNoClientCanSendIsRefusedAtStart) {
  TempDir dir;
  LiveServer live(dir.str(), turbine::server::ServerOptions{.auth_token = "a\nb"});
  EXPECT_EQ(live.status.code(), absl::StatusCode::kInvalidArgument) << live.status;
  EXPECT_NE(live.status.message().find("auth_token holds a line break at byte 2 of 3"),
            std::string::npos)
      << live.status;
}

// A start refused for its options leaves nothing behind: the data directory is made only
// once they are checked (before, a --data-dir too long for its socket was created anyway).
TEST(Protocol, ARefusedStartCreatesNoDataDirectory) {
  TempDir dir;
  const std::string data_dir = dir.str() + "/" + std::string(120, 'x');
  LiveServer live(data_dir);
  EXPECT_EQ(live.status.code(), absl::StatusCode::kInvalidArgument) << live.status;
  EXPECT_NE(live.status.message().find("the socket path is too long"), std::string::npos)
      << live.status;
  EXPECT_FALSE(std::filesystem::exists(data_dir));
}

TEST(Protocol, AnOversizedRequestIsRefused) {
  TempDir dir;
  LiveServer live(dir.str(), turbine::server::ServerOptions{.max_message_bytes = 4096});
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  grpc::Status huge = live.Call(Request("input.get", {Str(std::string(100000, 'x'))}), &reply);
  EXPECT_EQ(huge.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(6)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 8);
}

TEST(Protocol, ARestartedServerAnswersFromDisk) {
  TempDir dir;
  uint64_t task = 0;
  {
    LiveServer live(dir.str());
    ASSERT_TRUE(live.status.ok()) << live.status;
    v1::CallReply reply;
    ASSERT_TRUE(live.Call(Request("demo.fib", {Int(40)}), &reply).ok());
    task = reply.ref().task();
  }
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(40)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 102334155);
  EXPECT_EQ(reply.source(), v1::SOURCE_DISK);
  EXPECT_EQ(reply.ref().task(), task) << "task ids are stable across restarts";
  EXPECT_EQ(live.server->engine().Stats().executions, 0u);
}

TEST(Protocol, ASecondServerOnTheSameDataDirIsRefused) {
  TempDir dir;
  LiveServer first(dir.str());
  ASSERT_TRUE(first.status.ok()) << first.status;
  LiveServer second(dir.str());
  EXPECT_EQ(second.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status.message().find("another turbined"), std::string::npos);
  v1::CallReply reply;
  ASSERT_TRUE(first.Call(Request("demo.fib", {Int(7)}), &reply).ok());  // unharmed
  EXPECT_EQ(reply.value().int_value(), 13);
}

// Before, the second listener of one unix socket found it taken and the start failed as if
// another turbined held it, leaving the socket behind.
TEST(Protocol, AnAddressGivenTwiceIsRefused) {
  TempDir dir;
  const std::string socket = "unix:" + dir.str() + "/a.sock";
  for (const std::vector<std::string>& listen :
       {std::vector<std::string>{socket, socket},
        {socket, "unix:" + dir.str() + "/./a.sock"},
        {"127.0.0.1:47991", "127.0.0.1:47991"},
        {"LOCALHOST:47991", "localhost:47991"},
        {"unix:twice.sock", "unix:" + std::filesystem::current_path().string() + "/twice.sock"}}) {
    LiveServer twice(dir.str() + "/data", turbine::server::ServerOptions{.listen = listen});
    EXPECT_EQ(twice.status.code(), absl::StatusCode::kInvalidArgument) << twice.status;
    EXPECT_NE(twice.status.message().find("is given twice"), std::string::npos) << twice.status;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.str() + "/a.sock"));
  EXPECT_FALSE(std::filesystem::exists("twice.sock"));
  // Port 0 picks a port for each.
  LiveServer two(dir.str() + "/data",
                 turbine::server::ServerOptions{.listen = {"127.0.0.1:0", "127.0.0.1:0"}});
  ASSERT_TRUE(two.status.ok()) << two.status;
  EXPECT_EQ(two.server->addresses().size(), 2u);
}

TEST(Protocol, TcpIsOptInAndOffLoopbackNeedsTlsOrInsecure) {
  TempDir dir;
  LiveServer open(dir.str() + "/a", turbine::server::ServerOptions{.listen = {"0.0.0.0:0"}});
  EXPECT_EQ(open.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(open.status.message().find("without TLS"), std::string::npos) << open.status;

  LiveServer loopback(dir.str() + "/b", turbine::server::ServerOptions{.listen = {"127.0.0.1:0"}});
  ASSERT_TRUE(loopback.status.ok()) << loopback.status;
  EXPECT_TRUE(loopback.server->addresses().front().starts_with("127.0.0.1:"));
  EXPECT_NE(loopback.server->addresses().front(), "127.0.0.1:0") << "the chosen port";
  v1::CallReply reply;
  ASSERT_TRUE(loopback.Call(Request("demo.fib", {Int(11)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 89);
}

// turbined accepts connections itself and hands them to gRPC (server/src/listeners.h):
// TLS still runs gRPC's handshake, and "localhost" binds each of its addresses on one port.
TEST(Protocol, TlsOnLocalhostIsServedThroughTheDaemonsOwnAcceptor) {
  TempDir dir;
  const std::string cert = dir.str() + "/cert.pem";
  const std::string key = dir.str() + "/key.pem";
  const std::string openssl =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1 -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(openssl.c_str()), 0) << "openssl is needed (scripts/setup installs it)";
  LiveServer live(dir.str() + "/data",
                  turbine::server::ServerOptions{
                      .listen = {"localhost:0"}, .tls_cert_file = cert, .tls_key_file = key});
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string address = live.server->addresses().front();
  ASSERT_TRUE(address.starts_with("localhost:")) << address;
  ASSERT_NE(address, "localhost:0");

  std::ifstream in(cert);
  const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pem;
  auto stub = v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::SslCredentials(ssl)));
  v1::CallReply reply;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status = stub->Call(&context, Request("demo.fib", {Int(12)}), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.value().int_value(), 144);

  // Plain text to the TLS port is not served.
  grpc::ClientContext plain_context;
  plain_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  EXPECT_FALSE(live.stub->Call(&plain_context, Request("demo.fib", {Int(12)}), &reply).ok());
}

}  // namespace
