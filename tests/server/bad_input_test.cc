// Hostile and odd input over a real unix socket, against an in-process Server: names that
// are not UTF-8, requests protobuf cannot parse, huge echoes, doubles that compare oddly,
// and the health service by name.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <future>
#include <limits>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server_fixture.h"
#include "turbine/server/export.h"

namespace {

using turbine::testing::Int;
using turbine::testing::LiveServer;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

const std::string kBadName = "bad\xff\xfename";  // not UTF-8: any bytes but '/' and NUL

v1::Value Bytes(const std::string& bytes) {
  v1::Value value;
  value.set_bytes_value(bytes);
  return value;
}

v1::Value Double(double d) {
  v1::Value value;
  value.set_double_value(d);
  return value;
}

// Nested wraps `inner` in `depth` lists: [[[...inner...]]].
v1::Value Nested(int depth, v1::Value inner) {
  for (int i = 0; i < depth; ++i) {
    v1::Value list;
    *list.mutable_list_value()->add_items() = std::move(inner);
    inner = std::move(list);
  }
  return inner;
}

v1::Value NestedMaps(int depth, v1::Value inner) {
  for (int i = 0; i < depth; ++i) {
    v1::Value map;
    v1::MapEntry* entry = map.mutable_map_value()->add_entries();
    entry->set_key("a");
    *entry->mutable_value() = std::move(inner);
    inner = std::move(map);
  }
  return inner;
}

grpc::Status SetInputs(LiveServer& live, const std::string& key, v1::Value value,
                       v1::SetInputsReply* reply) {
  v1::SetInputsRequest request;
  v1::InputEntry* entry = request.add_inputs();
  entry->set_key(key);
  *entry->mutable_value() = std::move(value);
  grpc::ClientContext context;
  return live.stub->SetInputs(&context, request, reply);
}

TEST(BadInput, FileNamesThatAreNotUtf8TravelAsBytes) {
  TempDir dir;
  const std::string files = dir.str() + "/files";
  std::filesystem::create_directories(files);
  std::ofstream(files + "/" + kBadName) << "odd\n";
  std::ofstream(files + "/plain.txt") << "plain\n";
  LiveServer live(dir.str() + "/data");
  ASSERT_TRUE(live.status.ok()) << live.status;

  v1::CallReply listing;
  grpc::Status status = live.Call(Request("fs.list", {Str(files)}), &listing);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(listing.value().list_value().items_size(), 2) << listing.DebugString();
  auto name_of = [&](int i) {
    for (const v1::MapEntry& entry : listing.value().list_value().items(i).map_value().entries()) {
      if (entry.key() == "name") return entry.value();
    }
    return v1::Value();
  };
  // The odd name as bytes, exactly; the plain one stays a string.
  EXPECT_EQ(name_of(0).bytes_value(), kBadName);
  EXPECT_EQ(name_of(1).string_value(), "plain.txt");

  // The bytes go back in as a path: a string parameter accepts bytes.
  v1::CallReply content;
  ASSERT_TRUE(live.Call(Request("fs.read", {Bytes(files + "/" + kBadName)}), &content).ok());
  EXPECT_EQ(content.value().bytes_value(), "odd\n");

  // An error naming such a path escapes the bytes that are not UTF-8.
  v1::CallReply missing;
  ASSERT_TRUE(live.Call(Request("fs.read", {Bytes(files + "/gone\xff")}), &missing).ok());
  ASSERT_TRUE(missing.has_error());
  EXPECT_NE(missing.error().message().find("gone\\xff"), std::string::npos)
      << missing.error().message();
}

TEST(BadInput, UnparseableRequestsAreInvalidArgumentSayingWhy) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::SetInputsReply set;

  // 49 lists inside one another is protobuf's limit for a value; 50 do not parse.
  ASSERT_TRUE(SetInputs(live, "deep", Nested(49, Int(1)), &set).ok());
  grpc::Status deep = SetInputs(live, "deeper", Nested(50, Int(1)), &set);
  EXPECT_EQ(deep.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(deep.error_message().find("nests values too deeply"), std::string::npos)
      << deep.error_message();
  v1::CallReply reply;
  grpc::Status deep_call = live.Call(Request("input.get", {Nested(50, Int(1))}), &reply);
  EXPECT_EQ(deep_call.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(deep_call.error_message().find("nests values too deeply"), std::string::npos);
  // 49 lists parse in a Call too (input.get then refuses a list as its key: that is all).
  deep_call = live.Call(Request("input.get", {Nested(49, Int(1))}), &reply);
  EXPECT_EQ(deep_call.error_message().find("nests values too deeply"), std::string::npos)
      << deep_call.error_message();
  // Maps cost three levels: 33 parse in a Call, 32 in a SetInputs (one level deeper).
  deep_call = live.Call(Request("input.get", {NestedMaps(33, Int(1))}), &reply);
  EXPECT_EQ(deep_call.error_message().find("nests values too deeply"), std::string::npos)
      << deep_call.error_message();
  deep_call = live.Call(Request("input.get", {NestedMaps(34, Int(1))}), &reply);
  EXPECT_NE(deep_call.error_message().find("nests values too deeply"), std::string::npos);
  ASSERT_TRUE(SetInputs(live, "deep_map", NestedMaps(32, Int(1)), &set).ok());
  deep = SetInputs(live, "deeper_map", NestedMaps(33, Int(1)), &set);
  EXPECT_NE(deep.error_message().find("nests values too deeply"), std::string::npos);

  // A string field that is not UTF-8 (the client's protobuf only logs it and sends it).
  grpc::Status utf8 = live.Call(Request("input.get", {Str("key\xff")}), &reply);
  EXPECT_EQ(utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(utf8.error_message().find("turbine.v1.Value.string_value is not valid UTF-8"),
            std::string::npos)
      << utf8.error_message();
  grpc::Status name = live.Call(Request("demo.fib\xff", {Int(1)}), &reply);
  EXPECT_EQ(name.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(name.error_message().find("turbine.v1.CallRequest.function"), std::string::npos)
      << name.error_message();

  // A Watch too.
  {
    grpc::ClientContext context;
    auto watch = live.stub->Watch(&context, Request("input.get", {Str("key\xff")}));
    v1::CallReply ignored;
    EXPECT_FALSE(watch->Read(&ignored));
    EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  // On a stream the bad call is that call's error, matched by its id; the stream goes on.
  grpc::ClientContext context;
  auto stream = live.stub->CallStream(&context);
  v1::CallRequest bad = Request("input.get", {Str("key\xff")});
  bad.set_id(7);
  v1::CallRequest good = Request("demo.fib", {Int(10)});
  good.set_id(8);
  ASSERT_TRUE(stream->Write(bad));
  ASSERT_TRUE(stream->Write(good));
  stream->WritesDone();
  std::map<uint64_t, v1::CallReply> replies;
  while (stream->Read(&reply)) replies[reply.id()] = reply;
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[7].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(replies[7].error().message().find("not valid UTF-8"), std::string::npos);
  EXPECT_EQ(replies[8].value().int_value(), 55);
}

// A map that names a key twice is refused, and nothing of its batch is set: which entry
// was meant is anyone's guess. Before, the last one silently won.
TEST(BadInput, AMapNamingAKeyTwiceIsInvalidArgument) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::SetInputsRequest request;
  v1::InputEntry* fine = request.add_inputs();
  fine->set_key("fine");
  *fine->mutable_value() = Int(1);
  v1::InputEntry* twice = request.add_inputs();
  twice->set_key("twice");
  for (int64_t n : {1, 2}) {
    v1::MapEntry* entry = twice->mutable_value()->mutable_map_value()->add_entries();
    entry->set_key("a");
    *entry->mutable_value() = Int(n);
  }
  v1::SetInputsReply set;
  grpc::ClientContext context;
  grpc::Status status = live.stub->SetInputs(&context, request, &set);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("names key 'a' twice"), std::string::npos)
      << status.error_message();
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("input.get", {Str("fine")}), &reply).ok());
  EXPECT_TRUE(reply.has_error()) << "set from a refused batch: " << reply.DebugString();
}

// RawCall sends `bytes` as the request of `method`, as a client that is not protobuf might.
grpc::Status RawCall(LiveServer& live, const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(live.channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer reply;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &reply,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

TEST(BadInput, GarbageBytesAreInvalidArgumentOnEveryMethod) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string garbage = "\x0a\xff\xff\xff";  // field 1, a length past the end
  for (const char* method :
       {"Call", "SetInputs", "Stats", "ListFunctions", "Flush", "Shutdown", "Graph", "Trace"}) {
    grpc::Status status = RawCall(live, std::string("/turbine.v1.Turbine/") + method, garbage);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_NE(status.error_message().find("malformed protobuf"), std::string::npos)
        << method << ": " << status.error_message();
  }
  v1::CallReply reply;  // still serving (the Shutdown above did not parse, so did not stop it)
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(10)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 55);
}

// With a token configured, a request without it is UNAUTHENTICATED whatever its bytes:
// authentication comes before parsing. Before, garbage got INVALID_ARGUMENT (and a request
// with a string that is not UTF-8 also a line of protobuf's in the daemon's log).
TEST(BadInput, WithoutTheTokenGarbageIsUnauthenticatedOnEveryMethod) {
  TempDir dir;
  LiveServer live(dir.str(), turbine::server::ServerOptions{.auth_token = "s3cret"});
  ASSERT_TRUE(live.status.ok()) << live.status;
  for (const std::string& bytes : {std::string("\x0a\xff\xff\xff"), std::string("\x0a\x06" "demo.\xff")}) {
    for (const char* method : {"Call", "SetInputs", "Stats", "ListFunctions", "Flush", "Shutdown",
                               "Graph", "Trace", "DeleteInputs", "CollectGarbage", "Why"}) {
      grpc::Status status = RawCall(live, std::string("/turbine.v1.Turbine/") + method, bytes);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << ": " << status.error_message();
    }
  }
  // Watch, a server stream: its request is parsed before its reactor exists.
  grpc::GenericStub stub(live.channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Slice slice(std::string("\x0a\xff\xff\xff"));
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue queue;
  auto call = stub.PrepareCall(&context, "/turbine.v1.Turbine/Watch", &queue);
  void* tag = nullptr;
  bool ok = false;
  // One operation at a time, each waited for (the deadline bounds them), so that a failed
  // step never leaves the queue with work in flight.
  const auto wait_for = [&](intptr_t id) {
    while (queue.Next(&tag, &ok) && tag != reinterpret_cast<void*>(id)) {
    }
  };
  call->StartCall(reinterpret_cast<void*>(1));
  wait_for(1);
  call->Write(request, grpc::WriteOptions().set_last_message(), reinterpret_cast<void*>(2));
  wait_for(2);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  wait_for(3);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

TEST(BadInput, EchoesOfHugeInputAreCutShort) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;

  // A 1 MiB function name: NOT_FOUND, its message short (it used to overflow the
  // metadata limit: RESOURCE_EXHAUSTED).
  grpc::Status unknown = live.Call(Request(std::string(1 << 20, 'f')), &reply);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND) << unknown.error_message();
  EXPECT_LT(unknown.error_message().size(), 2048u);
  EXPECT_NE(unknown.error_message().find("...(1048576 bytes)"), std::string::npos);

  // input.get of an unset 4 MiB key: the error, which is cached, names it in brief.
  const std::string key(4 << 20, 'k');
  ASSERT_TRUE(live.Call(Request("input.get", {Str(key)}), &reply).ok());
  ASSERT_TRUE(reply.has_error());
  EXPECT_LT(reply.error().message().size(), 2048u);
  EXPECT_NE(reply.error().message().find("...(4194304 bytes)"), std::string::npos);

  // A 1 MiB key in SetInputs' NOT_FOUND (for a reference to task 0, an id no task has: it
  // was INVALID_ARGUMENT, where other ids no task has were NOT_FOUND) too.
  v1::SetInputsReply set;
  v1::Value no_task;
  no_task.mutable_ref_value()->set_task(0);
  grpc::Status bad_value = SetInputs(live, std::string(1 << 20, 'x'), no_task, &set);
  EXPECT_EQ(bad_value.error_code(), grpc::StatusCode::NOT_FOUND) << bad_value.error_message();
  EXPECT_LT(bad_value.error_message().size(), 2048u);
}

TEST(BadInput, DoublesCompareByTheirBits) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::SetInputsReply set;
  ASSERT_TRUE(SetInputs(live, "x", Double(0.0), &set).ok());
  ASSERT_TRUE(SetInputs(live, "x", Double(-0.0), &set).ok());
  EXPECT_EQ(set.changed(), 1u) << "-0.0 is not 0.0";
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("input.get", {Str("x")}), &reply).ok());
  EXPECT_TRUE(std::signbit(reply.value().double_value()));

  const double nan = std::numeric_limits<double>::quiet_NaN();
  ASSERT_TRUE(SetInputs(live, "x", Double(nan), &set).ok());
  EXPECT_EQ(set.changed(), 1u);
  ASSERT_TRUE(SetInputs(live, "x", Double(nan), &set).ok());
  EXPECT_EQ(set.changed(), 0u) << "the same NaN is no change";
  // Inside a list as well: the comparison is the same at any depth.
  ASSERT_TRUE(SetInputs(live, "y", Nested(2, Double(nan)), &set).ok());
  ASSERT_TRUE(SetInputs(live, "y", Nested(2, Double(nan)), &set).ok());
  EXPECT_EQ(set.changed(), 0u);
}

TEST(BadInput, HealthAnswersForTheServiceByName) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  auto health = grpc::health::v1::Health::NewStub(live.channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("turbine.v1.Turbine");
  grpc::health::v1::HealthCheckResponse status;
  grpc::ClientContext context;
  grpc::Status checked = health->Check(&context, request, &status);
  ASSERT_TRUE(checked.ok()) << checked.error_code() << ": " << checked.error_message();
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace

namespace turbine::testing {
namespace {

// A task reference to an id no task has is the request's NOT_FOUND, as `this_ref` and
// inside an argument, and creates nothing: that id may belong to a new task later, so an
// error cached under it would be wrong then.
TEST(BadInput, AReferenceToATaskThatDoesNotExistIsNotFound) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const uint64_t tasks_before = live.server->engine().Stats().tasks;
  v1::CallRequest method = Request("Path.parent");
  method.mutable_this_ref()->set_task(999'999'999);
  v1::CallReply reply;
  grpc::Status status = live.Call(method, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("no task has id 999999999"), std::string::npos)
      << status.error_message();
  // Id 0 is one no task has too (it was INVALID_ARGUMENT), as this_ref and in an argument.
  method.mutable_this_ref()->set_task(0);
  status = live.Call(method, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("no task has id 0"), std::string::npos)
      << status.error_message();
  v1::Value zero;
  zero.mutable_ref_value()->set_task(0);
  status = live.Call(Request("demo.fib", {zero}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();

  v1::Value ref;
  ref.mutable_ref_value()->set_task(888'888);
  v1::Value list;
  *list.mutable_list_value()->add_items() = Int(1);
  *list.mutable_list_value()->add_items() = ref;
  status = live.Call(Request("demo.fib", {list}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("argument 1 refers to task 888888"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(live.server->engine().Stats().tasks, tasks_before);

  // In an input's value too (before, it was set, and read back as a reference to nothing).
  v1::SetInputsReply set;
  status = SetInputs(live, "dangling", list, &set);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("input 'dangling' refers to task 888888"),
            std::string::npos)
      << status.error_message();
  status = live.Call(Request("input.get", {Str("dangling")}), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(reply.error().message().find("is not set"), std::string::npos)
      << reply.DebugString();

  // A reference to a task that exists is taken.
  ASSERT_TRUE(live.Call(Request("fs.path", {Str("/tmp/x")}), &reply).ok());
  ASSERT_FALSE(reply.has_error()) << reply.error().message();
  method.mutable_this_ref()->set_task(reply.ref().task());
  ASSERT_TRUE(live.Call(method, &reply).ok());
  EXPECT_FALSE(reply.has_error()) << reply.error().message();
}

// A this_ref naming a cell its task's result does not have is NOT_FOUND too, said before
// the call: before, the method ran, failed reading its receiver ("the cell this Vc points
// at no longer exists", UNKNOWN), and that failure was cached under the call.
TEST(BadInput, AReferenceToACellTheTaskDoesNotHaveIsNotFound) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply path;
  ASSERT_TRUE(live.Call(Request("fs.path", {Str(dir.str())}), &path).ok());
  ASSERT_FALSE(path.has_error()) << path.error().message();
  v1::CallRequest asset = Request("Path.asset");
  asset.mutable_this_ref()->set_task(path.ref().task());
  v1::CallReply made;
  ASSERT_TRUE(live.Call(asset, &made).ok());
  ASSERT_TRUE(made.value().has_ref_value()) << made.DebugString();
  const v1::TaskRef cell = made.value().ref_value();  // the task's one Directory cell
  ASSERT_FALSE(cell.cell_type().empty()) << made.DebugString();

  v1::CallRequest content = Request("Asset.content");
  *content.mutable_this_ref() = cell;
  content.mutable_this_ref()->set_cell_index(cell.cell_index() + 5);
  v1::CallReply reply;
  grpc::Status status = live.Call(content, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("this_ref: task " + std::to_string(cell.task()) +
                                        " has no cell " + cell.cell_type() + "/" +
                                        std::to_string(cell.cell_index() + 5)),
            std::string::npos)
      << status.error_message();

  // So is such a cell in an input's value (before, it was set).
  v1::Value missing_cell;
  *missing_cell.mutable_ref_value() = content.this_ref();
  v1::SetInputsReply set;
  status = SetInputs(live, "cell", missing_cell, &set);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("input 'cell' refers to cell " + cell.cell_type() + "/" +
                                        std::to_string(cell.cell_index() + 5) + " of task " +
                                        std::to_string(cell.task())),
            std::string::npos)
      << status.error_message();

  // The cell it has is taken.
  *content.mutable_this_ref() = cell;
  status = live.Call(content, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(reply.has_error()) << reply.error().message();
  EXPECT_TRUE(reply.value().has_bytes_value()) << reply.DebugString();  // its listing
}

// A task reference whose type is known and is not the one the parameter or the method's
// receiver takes is the caller's INVALID_ARGUMENT, said before anything runs, not a
// failure cached under the call.
TEST(BadInput, AReferenceOfTheWrongTypeIsInvalidArgument) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply fib;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(5)}), &fib).ok());
  ASSERT_FALSE(fib.has_error()) << fib.error().message();
  const uint64_t tasks_before = live.server->engine().Stats().tasks;

  v1::Value fib_ref;
  *fib_ref.mutable_ref_value() = fib.ref();
  v1::CallReply reply;
  grpc::Status status = live.Call(Request("test.length_of", {fib_ref}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("argument 1 (text: vc<string>): task " +
                                        std::to_string(fib.ref().task()) + " holds i64, not string"),
            std::string::npos)
      << status.error_message();

  v1::CallRequest method = Request("Path.parent");
  *method.mutable_this_ref() = fib.ref();
  status = live.Call(method, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("this_ref names a value of type i64"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(live.server->engine().Stats().tasks, tasks_before);

  // No function name at all is the request's mistake, not a function that is missing.
  status = live.Call(Request("", {}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  // A reference of the right type is taken.
  v1::CallReply words;
  ASSERT_TRUE(live.Call(Request("test.words", {Str("a bc")}), &words).ok());
  ASSERT_FALSE(words.has_error()) << words.error().message();
  v1::Value words_ref;
  *words_ref.mutable_ref_value() = words.ref();
  ASSERT_TRUE(live.Call(Request("test.length_of", {words_ref}), &reply).ok());
  ASSERT_FALSE(reply.has_error()) << reply.error().message();
  EXPECT_EQ(reply.value().int_value(), 4);
}

// An integer above int64's range travels as uint_value both ways, exactly. Before, a
// uint64_t result above it went out as a double (its last bits lost) and nothing could
// send one in.
TEST(BadInput, AUint64AboveInt64sRangeTravelsExactly) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const auto uint = [](uint64_t u) {
    v1::Value value;
    value.set_uint_value(u);
    return value;
  };
  for (const uint64_t sent : {uint64_t{1} << 63, UINT64_MAX - 1}) {
    v1::CallReply reply;
    ASSERT_TRUE(live.Call(Request("test.next_u64", {uint(sent)}), &reply).ok());
    ASSERT_FALSE(reply.has_error()) << reply.error().message();
    ASSERT_TRUE(reply.value().has_uint_value()) << reply.value().DebugString();
    EXPECT_EQ(reply.value().uint_value(), sent + 1);
  }
  // Small ones are int_value either way.
  v1::CallReply small;
  ASSERT_TRUE(live.Call(Request("test.next_u64", {uint(41)}), &small).ok());
  EXPECT_EQ(small.value().int_value(), 42) << small.value().DebugString();
  // Too large for the parameter's type, or for a value's integers: INVALID_ARGUMENT.
  v1::CallReply reply;
  grpc::Status status = live.Call(Request("demo.fib", {uint(uint64_t{1} << 63)}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("9223372036854775808 is out of range for i64"),
            std::string::npos)
      << status.error_message();
  status = live.Call(Request("test.next_u64", {turbine::testing::Int(-1)}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

}  // namespace
}  // namespace turbine::testing

namespace {

turbine::Task<uint64_t> NextU64Impl(uint64_t n) { co_return n + 1; }
const turbine::Function<NextU64Impl> next_u64{"test.next_u64", 1, "its argument plus one"};
const turbine::server::Export export_next_u64{next_u64, {"n"}};

turbine::Task<std::string> WordsImpl(std::string words) { co_return words; }
const turbine::Function<WordsImpl> words_fn{"test.words", 1, "its argument"};

turbine::Task<int64_t> LengthOfImpl(turbine::Vc<std::string> text) {
  const std::string value = co_await text;
  co_return static_cast<int64_t>(value.size());
}
const turbine::Function<LengthOfImpl> length_of{"test.length_of", 1, "the length of a text"};

const turbine::server::Export export_words{words_fn, {"words"}};
const turbine::server::Export export_length_of{length_of, {"text"}};

}  // namespace
