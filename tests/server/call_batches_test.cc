// call_batches_test.cc — rpc CallBatches: many calls per message each way, through a real
// in-process Server on a unix socket.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "server_fixture.h"

namespace turbine::testing {
namespace {

v1::CallBatch Batch(int first_id, int count, int keys) {
  v1::CallBatch batch;
  for (int i = first_id; i < first_id + count; ++i) {
    v1::CallRequest* call = batch.add_calls();
    *call = Request("demo.busy", {Int(i % keys), Int(0)});
    call->set_id(static_cast<uint64_t>(i));
  }
  return batch;
}

// Every call of every batch is answered once, with its own id, value and source, and the
// replies share messages: calls answered at once from the cache leave in one ReplyBatch.
TEST(CallBatches, AnswersEveryCallAndBatchesTheReplies) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  constexpr int kBatches = 3;
  constexpr int kPerBatch = 1000;
  constexpr int kKeys = 100;  // the first 100 calls execute, the rest hit the cache
  grpc::ClientContext context;
  auto stream = live.stub->CallBatches(&context);
  for (int b = 0; b < kBatches; ++b) {
    ASSERT_TRUE(stream->Write(Batch(1 + b * kPerBatch, kPerBatch, kKeys)));
  }
  stream->WritesDone();
  std::map<uint64_t, v1::CallReply> replies;
  int messages = 0;
  v1::ReplyBatch batch;
  while (stream->Read(&batch)) {
    ++messages;
    for (const v1::CallReply& reply : batch.replies()) {
      EXPECT_TRUE(replies.emplace(reply.id(), reply).second) << "answered twice: " << reply.id();
    }
  }
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(replies.size(), static_cast<size_t>(kBatches * kPerBatch));
  int executed = 0;
  for (const auto& [id, reply] : replies) {
    ASSERT_FALSE(reply.has_error()) << reply.error().message();
    EXPECT_EQ(reply.value().int_value(), static_cast<int64_t>(id % kKeys));
    executed += reply.source() == v1::SOURCE_EXECUTED ? 1 : 0;
  }
  EXPECT_GE(executed, kKeys);  // a cached call may also wait for the execution of its twin
  // At most one message per executed call (answered on a worker, alone) plus one per batch.
  EXPECT_LE(messages, kKeys + kBatches);
}

// A call that is not valid is that call's error, matched by its id; the other calls of its
// batch, and the stream, go on.
TEST(CallBatches, ABadCallFailsAloneWithItsId) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallBatch batch;
  *batch.add_calls() = Request("no.such.function");
  batch.mutable_calls(0)->set_id(1);
  *batch.add_calls() = Request("demo.fib", {Str("ten")});
  batch.mutable_calls(1)->set_id(2);
  *batch.add_calls() = Request("input.get", {Str("key\xff")});  // not UTF-8: does not parse
  batch.mutable_calls(2)->set_id(3);
  *batch.add_calls() = Request("demo.fib", {Int(10)});
  batch.mutable_calls(3)->set_id(4);
  grpc::ClientContext context;
  auto stream = live.stub->CallBatches(&context);
  ASSERT_TRUE(stream->Write(batch));
  stream->WritesDone();
  std::map<uint64_t, v1::CallReply> replies;
  v1::ReplyBatch reply_batch;
  while (stream->Read(&reply_batch)) {
    for (const v1::CallReply& reply : reply_batch.replies()) replies[reply.id()] = reply;
  }
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[1].error().code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(replies[2].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(replies[3].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(replies[3].error().message().find("not valid UTF-8"), std::string::npos)
      << replies[3].error().message();
  EXPECT_EQ(replies[4].value().int_value(), 55);
}

// A batch past the limit is refused whole: the stream ends with INVALID_ARGUMENT, and the
// daemon serves on.
TEST(CallBatches, ABatchOverTheLimitEndsTheStream) {
  TempDir dir;
  LiveServer live(dir.str());
  ASSERT_TRUE(live.status.ok()) << live.status;
  grpc::ClientContext context;
  auto stream = live.stub->CallBatches(&context);
  ASSERT_TRUE(stream->Write(Batch(1, 10'001, 10)));
  stream->WritesDone();
  v1::ReplyBatch ignored;
  while (stream->Read(&ignored)) {
  }
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("at most 10000 calls"), std::string::npos)
      << status.error_message();
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(10)}), &reply).ok());
  EXPECT_EQ(reply.value().int_value(), 55);
}

}  // namespace
}  // namespace turbine::testing
