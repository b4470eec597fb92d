// CallStream and CallBatches flow control on a real turbined: clients that pipeline calls
// with 1 MiB replies, or send them in one batch, and do not read them. The replies the daemon holds for them stay within its
// limits (read from Stats), and once the clients read, every reply arrives, whole, once.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "../server/requests.h"
#include "../storage/temp_dir.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kValueBytes = kMiB;
// A reply is the value and a few fields around it.
constexpr int64_t kReplyBytes = kValueBytes + 1024;
// server/src/reply_budget.h: calls a stream lets compute before its first reply.
constexpr int64_t kFirstCallsComputing = 4;

// OwnChannel connects on a connection of its own, so that one client not reading cannot
// hold up another's (HTTP/2 flow control is per connection too).
std::unique_ptr<v1::Turbine::Stub> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::Turbine::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

std::string BigValue() {
  std::string value(kValueBytes, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7 + i / 4096);
  return value;
}

v1::StatsReply Stats(v1::Turbine::Stub& stub) {
  v1::StatsReply stats;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(stub.Stats(&context, v1::StatsRequest(), &stats).ok());
  return stats;
}

// UnreadStream pipelines `calls` calls of input.get("big") with ids 1..calls from a thread
// (the writes block once the daemon stops reading) and reads nothing until Drain.
class UnreadStream {
 public:
  UnreadStream(const std::string& address, int calls)
      : stub_(OwnChannel(address)), stream_(stub_->CallStream(&context_)) {
    writer_ = std::thread([this, calls] {
      for (int id = 1; id <= calls; ++id) {
        v1::CallRequest request = Request("input.get", {Str("big")});
        request.set_id(static_cast<uint64_t>(id));
        if (!stream_->Write(request)) return;
      }
      stream_->WritesDone();
    });
  }
  // A failed test leaves without draining: cancel, so the writer does not block forever.
  ~UnreadStream() {
    if (writer_.joinable()) {
      context_.TryCancel();
      writer_.join();
    }
  }

  // Drain reads every reply and checks each id came once, with the whole value.
  void Drain(int calls, const std::string& value) {
    std::set<uint64_t> ids;
    v1::CallReply reply;
    while (stream_->Read(&reply)) {
      EXPECT_TRUE(ids.insert(reply.id()).second) << "reply " << reply.id() << " twice";
      ASSERT_TRUE(reply.has_value()) << reply.error().message();
      ASSERT_EQ(reply.value().bytes_value().size(), value.size()) << "reply " << reply.id();
      EXPECT_TRUE(reply.value().bytes_value() == value) << "reply " << reply.id();
    }
    writer_.join();
    EXPECT_TRUE(stream_->Finish().ok());
    EXPECT_EQ(ids.size(), static_cast<size_t>(calls));
    if (!ids.empty()) {
      EXPECT_EQ(*ids.begin(), 1u);
      EXPECT_EQ(*ids.rbegin(), static_cast<uint64_t>(calls));
    }
  }

 private:
  std::unique_ptr<v1::Turbine::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::CallRequest, v1::CallReply>> stream_;
  std::thread writer_;
};

// UnreadBatch sends `calls` calls of input.get("big") with ids 1..calls in one CallBatch
// and reads nothing until Drain.
class UnreadBatch {
 public:
  UnreadBatch(const std::string& address, int calls) : stub_(OwnChannel(address)) {
    // A batch that never resumes fails the test rather than hanging it.
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stream_ = stub_->CallBatches(&context_);
    v1::CallBatch batch;
    for (int id = 1; id <= calls; ++id) {
      v1::CallRequest* request = batch.add_calls();
      *request = Request("input.get", {Str("big")});
      request->set_id(static_cast<uint64_t>(id));
    }
    sent_ = stream_->Write(batch) && stream_->WritesDone();
  }
  ~UnreadBatch() {
    if (!drained_) context_.TryCancel();
  }
  bool sent() const { return sent_; }

  // Ended reads what comes (nothing is expected) and returns how the stream ended.
  grpc::Status Ended() {
    v1::ReplyBatch replies;
    while (stream_->Read(&replies)) {
    }
    drained_ = true;
    return stream_->Finish();
  }

  // Drain reads every reply and checks each id came once, with the whole value.
  void Drain(int calls, const std::string& value) {
    std::set<uint64_t> ids;
    v1::ReplyBatch replies;
    while (stream_->Read(&replies)) {
      for (const v1::CallReply& reply : replies.replies()) {
        EXPECT_TRUE(ids.insert(reply.id()).second) << "reply " << reply.id() << " twice";
        ASSERT_TRUE(reply.has_value()) << reply.error().message();
        EXPECT_TRUE(reply.value().bytes_value() == value) << "reply " << reply.id();
      }
    }
    const grpc::Status finished = stream_->Finish();
    drained_ = true;
    EXPECT_TRUE(finished.ok()) << finished.error_message();
    EXPECT_EQ(ids.size(), static_cast<size_t>(calls));
  }

 private:
  std::unique_ptr<v1::Turbine::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::CallBatch, v1::ReplyBatch>> stream_;
  bool sent_ = false;
  bool drained_ = false;
};

class FlowControl : public ::testing::Test {
 protected:
  void StartDaemon(int64_t stream_limit, int64_t daemon_limit) {
    ASSERT_TRUE(daemon_.Start({"--data-dir", dir_.str(), "--stream-reply-buffer-bytes",
                               std::to_string(stream_limit), "--reply-buffer-bytes",
                               std::to_string(daemon_limit)}))
        << daemon_.log();
    stats_stub_ = OwnChannel(daemon_.address());
    v1::SetInputsRequest set;
    v1::InputEntry* entry = set.add_inputs();
    entry->set_key("big");
    entry->mutable_value()->set_bytes_value(value_);
    v1::SetInputsReply reply;
    grpc::ClientContext context;
    ASSERT_TRUE(stats_stub_->SetInputs(&context, set, &reply).ok());
  }

  // WaitUntilHeldBack polls Stats until `streams` streams stopped reading with at least
  // `full` bytes queued (a stream also pauses briefly while its first calls compute), or
  // until the queued replies went past `bound` (the failure: nothing holds them back).
  // Returns the last Stats.
  v1::StatsReply WaitUntilHeldBack(int streams, int64_t full, int64_t bound) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    v1::StatsReply stats = Stats(*stats_stub_);
    while ((stats.streams_paused() < static_cast<uint64_t>(streams) ||
            stats.reply_bytes_queued() < static_cast<uint64_t>(full)) &&
           stats.reply_bytes_queued() <= static_cast<uint64_t>(bound) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a condition
      stats = Stats(*stats_stub_);
    }
    return stats;
  }

  TempDir dir_;
  DaemonProcess daemon_;
  std::unique_ptr<v1::Turbine::Stub> stats_stub_;
  const std::string value_ = BigValue();
};

TEST_F(FlowControl, AStreamWhoseRepliesAreNotReadStopsReadingRequests) {
  constexpr int64_t kStreamLimit = 8 * kMiB;
  constexpr int kCalls = 500;  // 500 MB of replies if nothing held them back
  StartDaemon(kStreamLimit, 64 * kMiB);
  UnreadStream stream(daemon_.address(), kCalls);
  // It stops once its queue reaches the limit. Before its first reply its size is unknown
  // and up to kFirstCallsComputing (4) calls may be computing, all answering at once.
  const int64_t bound = kStreamLimit + kFirstCallsComputing * kReplyBytes;
  v1::StatsReply stats = WaitUntilHeldBack(1, kStreamLimit, bound);
  EXPECT_EQ(stats.streams_paused(), 1u);
  ASSERT_LE(stats.reply_bytes_queued(), static_cast<uint64_t>(bound));
  EXPECT_GE(stats.reply_bytes_queued(), static_cast<uint64_t>(kStreamLimit));
  // Reading stopped near the limit (calls computing when it paused may still answer, and
  // their replies are within the bound).
  EXPECT_LT(stats.calls(), 20u);
  stats = Stats(*stats_stub_);
  EXPECT_LE(stats.reply_bytes_queued(), static_cast<uint64_t>(bound));
  EXPECT_LT(stats.calls(), 20u);

  stream.Drain(kCalls, value_);
  stats = Stats(*stats_stub_);
  EXPECT_EQ(stats.reply_bytes_queued(), 0u);
  EXPECT_EQ(stats.streams_paused(), 0u);
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
}

// The calls of one batch are held back as a stream's requests are: before, every call of
// a batch read was started, and a batch of 2,000 such calls had the daemon hold 2 GB.
TEST_F(FlowControl, ABatchWhoseRepliesAreNotReadStopsStartingItsCalls) {
  constexpr int64_t kStreamLimit = 8 * kMiB;
  constexpr int kCalls = 500;  // 500 MB of replies if nothing held them back
  StartDaemon(kStreamLimit, 64 * kMiB);
  UnreadBatch batch(daemon_.address(), kCalls);
  ASSERT_TRUE(batch.sent());
  const int64_t bound = kStreamLimit + kFirstCallsComputing * kReplyBytes;
  v1::StatsReply stats = WaitUntilHeldBack(1, kStreamLimit, bound);
  EXPECT_EQ(stats.streams_paused(), 1u);
  ASSERT_LE(stats.reply_bytes_queued(), static_cast<uint64_t>(bound));
  EXPECT_GE(stats.reply_bytes_queued(), static_cast<uint64_t>(kStreamLimit));
  EXPECT_LT(stats.calls(), 20u);

  batch.Drain(kCalls, value_);
  stats = Stats(*stats_stub_);
  EXPECT_EQ(stats.reply_bytes_queued(), 0u);
  EXPECT_EQ(stats.streams_paused(), 0u);
  EXPECT_EQ(stats.calls(), static_cast<uint64_t>(kCalls));
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
}

// A stop while batches are held back mid-way, and while another batch's calls are being
// started as its replies are read, ends them all "shutting down" and exits cleanly: the
// stop waits for every stream cut short to be done, and a batch being started must say so
// exactly once (counted twice, the stop would wait for ever).
TEST_F(FlowControl, ADaemonStoppingWhileBatchesAreHeldBackExitsCleanly) {
  StartDaemon(/*stream_limit=*/4 * kMiB, /*daemon_limit=*/64 * kMiB);
  std::vector<std::unique_ptr<UnreadBatch>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<UnreadBatch>(daemon_.address(), 500));
    ASSERT_TRUE(held.back()->sent());
  }
  // Read as it comes: 4,000 distinct calls of 5 ms each, far more than the grace.
  auto reading_stub = OwnChannel(daemon_.address());
  grpc::ClientContext reading_context;
  reading_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reading = reading_stub->CallBatches(&reading_context);
  v1::CallBatch busy;
  for (int id = 1; id <= 4000; ++id) {
    v1::CallRequest* request = busy.add_calls();
    *request = Request("demo.busy", {turbine::testing::Int(1'000'000 + id),
                                     turbine::testing::Int(5000)});
    request->set_id(static_cast<uint64_t>(id));
  }
  ASSERT_TRUE(reading->Write(busy));
  int answered = 0;
  std::thread reader([&] {
    v1::ReplyBatch replies;
    while (reading->Read(&replies)) answered += replies.replies_size();
  });
  WaitUntilHeldBack(3, 0, INT64_MAX);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the busy batch under way

  daemon_.Signal(SIGTERM);
  if (daemon_.WaitForLog("bye")) {
    EXPECT_EQ(daemon_.Reap(), 0) << daemon_.log();
  } else {
    ADD_FAILURE() << "the stop hangs";
    daemon_.Stop(SIGKILL);
  }
  reader.join();
  const grpc::Status read_ended = reading->Finish();
  EXPECT_EQ(read_ended.error_code(), grpc::StatusCode::UNAVAILABLE) << read_ended.error_message();
  // Each call has its reply: a value, or once the stop began, "shutting down".
  EXPECT_LE(answered, 4000);
  // (Their clients read nothing, so the status sent after the replies that fill the
  // connection's window may not arrive before the daemon has gone: only the code is sure.)
  for (auto& batch : held) {
    const grpc::Status ended = batch->Ended();
    EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  }
}

// ResidentBytes is the process's resident set (VmRSS), or 0 if it cannot be read.
int64_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// A reply's size on the wire is no measure of what it holds in memory: a list of 10,000
// small integers is 30 KB there and about 600 KB here (each element is a message object of
// its own). The limits count memory: before, they counted wire bytes, and a client that
// stopped reading such replies had the daemon hold about 20 times its limit.
TEST_F(FlowControl, RepliesAreCountedByTheMemoryTheyHold) {
  constexpr int64_t kStreamLimit = 2 * kMiB;
  constexpr int kItems = 10'000;
  constexpr int kCalls = 600;  // 18 MB on the wire, more than the connection buffers
  StartDaemon(kStreamLimit, 64 * kMiB);
  v1::SetInputsRequest set;
  v1::InputEntry* entry = set.add_inputs();
  entry->set_key("list");
  for (int i = 0; i < kItems; ++i) {
    entry->mutable_value()->mutable_list_value()->add_items()->set_int_value(i % 100);
  }
  v1::SetInputsReply set_reply;
  grpc::ClientContext set_context;
  ASSERT_TRUE(stats_stub_->SetInputs(&set_context, set, &set_reply).ok());
  [[maybe_unused]] const int64_t before = ResidentBytes(daemon_.pid());
  ASSERT_GT(before, 0);

  auto stub = OwnChannel(daemon_.address());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub->CallBatches(&context);
  v1::CallBatch calls;
  for (int id = 1; id <= kCalls; ++id) {
    v1::CallRequest* request = calls.add_calls();
    *request = Request("input.get", {Str("list")});
    request->set_id(static_cast<uint64_t>(id));
  }
  ASSERT_TRUE(stream->Write(calls) && stream->WritesDone());
  // Before its first reply a stream lets kFirstCallsComputing calls compute; then as many
  // as fit with the largest reply so far (about 600 KB each in memory).
  const int64_t bound = kStreamLimit + kFirstCallsComputing * kMiB;
  v1::StatsReply stats = WaitUntilHeldBack(1, kStreamLimit, bound);
  EXPECT_EQ(stats.streams_paused(), 1u);
  EXPECT_LE(stats.reply_bytes_queued(), static_cast<uint64_t>(bound));
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // (A sanitizer's allocator keeps freed memory back and adds its own: not measured then.)
  const int64_t grown = ResidentBytes(daemon_.pid()) - before;
  EXPECT_LT(grown, 16 * kMiB) << "the resident set grew by " << grown << " bytes for "
                              << stats.reply_bytes_queued() << " bytes of replies counted";
#endif

  int replies = 0;
  v1::ReplyBatch batch;
  while (stream->Read(&batch)) {
    for (const v1::CallReply& reply : batch.replies()) {
      EXPECT_EQ(reply.value().list_value().items_size(), kItems);
      ++replies;
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(replies, kCalls);
  EXPECT_EQ(Stats(*stats_stub_).reply_bytes_queued(), 0u);
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
}

TEST_F(FlowControl, StreamsTogetherStayWithinTheDaemonLimit) {
  constexpr int64_t kDaemonLimit = 6 * kMiB;
  constexpr int kStreams = 4;
  constexpr int kCalls = 100;  // 400 MB of replies if nothing held them back
  StartDaemon(/*stream_limit=*/64 * kMiB, kDaemonLimit);
  std::vector<std::unique_ptr<UnreadStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<UnreadStream>(daemon_.address(), kCalls));
  }
  // Each stream may go past the daemon's limit by one burst: a stream with nothing queued or
  // computing always reads (so none waits on another's client), and before its first reply
  // up to kFirstCallsComputing of its calls may answer at once.
  const int64_t bound = kDaemonLimit + kStreams * kFirstCallsComputing * kReplyBytes;
  v1::StatsReply stats = WaitUntilHeldBack(kStreams, kDaemonLimit, bound);
  EXPECT_EQ(stats.streams_paused(), static_cast<uint64_t>(kStreams));
  EXPECT_GE(stats.reply_bytes_queued(), static_cast<uint64_t>(kDaemonLimit));
  ASSERT_LE(stats.reply_bytes_queued(), static_cast<uint64_t>(bound));

  for (auto& stream : streams) stream->Drain(kCalls, value_);
  stats = Stats(*stats_stub_);
  EXPECT_EQ(stats.reply_bytes_queued(), 0u);
  EXPECT_EQ(stats.streams_paused(), 0u);
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
}

}  // namespace
