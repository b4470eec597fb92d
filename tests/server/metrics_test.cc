// Prometheus metrics of an in-process Server, scraped over HTTP the way Prometheus does:
// counters move with calls, sources and errors are told apart, the store's size shows,
// and a metrics address is checked like a listen address.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "scrape.h"
#include "server_fixture.h"

namespace {

using turbine::server::ServerOptions;
using turbine::testing::HttpGet;
using turbine::testing::Int;
using turbine::testing::LiveServer;
using turbine::testing::Request;
using turbine::testing::Sample;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

ServerOptions WithMetrics(const std::string& address = "127.0.0.1:0", bool insecure = false) {
  ServerOptions options;
  options.metrics_listen = address;
  options.insecure = insecure;
  return options;
}

// Scrape reads the server's metrics page; it fails the test if there is none.
std::string Scrape(LiveServer& live) {
  const turbine::testing::HttpReply reply = HttpGet(live.server->metrics_address());
  EXPECT_EQ(reply.status, 200) << reply.body;
  return reply.body;
}

double Value(const std::string& page, const std::string& series) {
  const std::optional<double> value = Sample(page, series);
  EXPECT_TRUE(value.has_value()) << series << " is not on the page:\n" << page;
  return value.value_or(-1);
}

grpc::Status Flush(LiveServer& live) {
  grpc::ClientContext context;
  v1::FlushReply reply;
  return live.stub->Flush(&context, v1::FlushRequest(), &reply);
}

TEST(Metrics, CallsAreCountedBySourceAndErrorsByCode) {
  TempDir dir;
  LiveServer live(dir.str(), WithMetrics());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string address = live.server->metrics_address();
  EXPECT_TRUE(address.starts_with("127.0.0.1:")) << address;
  EXPECT_NE(address, "127.0.0.1:0") << "the chosen port";

  std::string page = Scrape(live);
  EXPECT_EQ(Value(page, R"(turbine_rpcs_total{method="Call"})"), 0);
  EXPECT_EQ(Value(page, R"(turbine_calls_total{source="executed"})"), 0);

  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(20)}), &reply).ok());
  ASSERT_EQ(reply.source(), v1::SOURCE_EXECUTED);
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(20)}), &reply).ok());
  ASSERT_EQ(reply.source(), v1::SOURCE_MEMORY);
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(20)}), &reply).ok());
  EXPECT_EQ(live.Call(Request("no.such"), &reply).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(live.Call(Request("demo.fib", {Str("x")}), &reply).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  page = Scrape(live);
  EXPECT_EQ(Value(page, R"(turbine_rpcs_total{method="Call"})"), 5);
  EXPECT_EQ(Value(page, R"(turbine_rpcs_total{method="Flush"})"), 0);
  EXPECT_EQ(Value(page, R"(turbine_calls_total{source="executed"})"), 1);
  EXPECT_EQ(Value(page, R"(turbine_calls_total{source="memory"})"), 2);
  EXPECT_EQ(Value(page, R"(turbine_calls_total{source="disk"})"), 0);
  EXPECT_EQ(Value(page, R"(turbine_errors_total{code="NOT_FOUND"})"), 1);
  EXPECT_EQ(Value(page, R"(turbine_errors_total{code="INVALID_ARGUMENT"})"), 1);
  EXPECT_EQ(Value(page, R"(turbine_errors_total{code="UNAUTHENTICATED"})"), 0);
  // fib(20) runs once per n from 0 to 20; the page agrees with the engine's own count.
  EXPECT_EQ(Value(page, "turbine_executions_total"), 21);
  EXPECT_EQ(Value(page, "turbine_executions_total"),
            static_cast<double>(live.server->engine().Stats().executions));
  EXPECT_EQ(Value(page, R"(turbine_function_executions_total{function="demo.fib",version="1"})"),
            21);
  EXPECT_EQ(Value(page, "turbine_tasks"), 21);
  EXPECT_GT(Value(page, "turbine_uptime_seconds"), 0);
  EXPECT_GT(Value(page, "process_start_time_seconds"), 1.6e9) << "a Unix time";
  EXPECT_GT(Value(page, "process_resident_memory_bytes"), 0);
}

TEST(Metrics, InputBatchesAndFunctionErrorsAreCounted) {
  TempDir dir;
  LiveServer live(dir.str(), WithMetrics());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const auto set = [&live](int64_t a, int64_t b) {
    v1::SetInputsRequest request;
    v1::InputEntry* first = request.add_inputs();
    first->set_key("a");
    *first->mutable_value() = Int(a);
    v1::InputEntry* second = request.add_inputs();
    second->set_key("b");
    *second->mutable_value() = Int(b);
    grpc::ClientContext context;
    v1::SetInputsReply reply;
    return live.stub->SetInputs(&context, request, &reply);
  };
  ASSERT_TRUE(set(1, 2).ok());
  ASSERT_TRUE(set(1, 3).ok());  // only b changes
  // Reading an input that was never set is the function's error: an answer, counted.
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("input.get", {Str("never-set")}), &reply).ok());
  ASSERT_TRUE(reply.has_error());

  const std::string page = Scrape(live);
  EXPECT_EQ(Value(page, R"(turbine_rpcs_total{method="SetInputs"})"), 2);
  EXPECT_EQ(Value(page, "turbine_input_batches_total"), 2);
  EXPECT_EQ(Value(page, "turbine_inputs_set_total"), 4);
  EXPECT_EQ(Value(page, "turbine_inputs_changed_total"), 3);
  EXPECT_EQ(Value(page, R"(turbine_errors_total{code="UNKNOWN"})"), 1);
  EXPECT_EQ(Value(page, "turbine_revision"),
            static_cast<double>(live.server->engine().Stats().revision));
}

TEST(Metrics, GarbageCollectionPassesShowWithWhatTheyRemovedAndTheStoreByLastUse) {
  TempDir dir;
  ServerOptions options = WithMetrics();
  options.gc.interval = {};   // only CollectGarbage
  options.gc.disk_limit = 1;  // everything but inputs is garbage
  LiveServer live(dir.str(), options);
  ASSERT_TRUE(live.status.ok()) << live.status;
  std::string page = Scrape(live);
  EXPECT_EQ(Value(page, "turbine_gc_duration_seconds_count"), 0);
  EXPECT_EQ(Value(page, R"(turbine_store_tasks_by_last_use{age="today"})"), 0);

  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(25)}), &reply).ok());  // 26 tasks
  {
    v1::SetInputsRequest set;
    v1::InputEntry* entry = set.add_inputs();
    entry->set_key("kept");
    *entry->mutable_value() = Int(1);
    grpc::ClientContext context;
    v1::SetInputsReply set_reply;
    ASSERT_TRUE(live.stub->SetInputs(&context, set, &set_reply).ok());
  }
  grpc::ClientContext context;
  v1::CollectGarbageReply gc;
  ASSERT_TRUE(live.stub->CollectGarbage(&context, v1::CollectGarbageRequest(), &gc).ok());
  EXPECT_EQ(gc.removed_tasks(), 26u);
  EXPECT_EQ(gc.over_limit() + gc.dependent(), 26u);
  EXPECT_GT(gc.bytes_before(), 0u);
  EXPECT_GT(gc.bytes_after(), 0u);
  page = Scrape(live);
  EXPECT_EQ(Value(page, R"(turbine_rpcs_total{method="CollectGarbage"})"), 1);
  EXPECT_EQ(Value(page, "turbine_gc_duration_seconds_count"), 1);
  EXPECT_GT(Value(page, "turbine_gc_duration_seconds_sum"), 0);
  EXPECT_EQ(Value(page, "turbine_gc_removed_tasks_total"), 26);
  // Freed bytes, if any: a store this small may even take more once compacted into files.
  EXPECT_EQ(Value(page, "turbine_gc_removed_bytes_total"),
            gc.bytes_before() > gc.bytes_after()
                ? static_cast<double>(gc.bytes_before() - gc.bytes_after())
                : 0.0);
  EXPECT_EQ(Value(page, R"(turbine_store_tasks_by_last_use{age="today"})"), 1);  // the input
  EXPECT_EQ(Value(page, R"(turbine_store_tasks_by_last_use{age="older"})"), 0);
  // Between passes: idle, and no pass's counts (a pass's own are in the engine's tests).
  EXPECT_EQ(Value(page, R"(turbine_gc_phase{phase="idle"})"), 1);
  EXPECT_EQ(Value(page, R"(turbine_gc_phase{phase="deleting"})"), 0);
  EXPECT_EQ(Value(page, R"(turbine_gc_pass_tasks{kind="removed"})"), 0);
  EXPECT_EQ(Value(page, R"(turbine_gc_pass_tasks{kind="garbage"})"), 0);
}

TEST(Metrics, SnapshotsAndStoreSizeShowAndARestartCountsDiskHits) {
  TempDir dir;
  ServerOptions options = WithMetrics();
  options.snapshot_interval = std::chrono::milliseconds(0);  // only Flush writes
  {
    LiveServer live(dir.str(), options);
    ASSERT_TRUE(live.status.ok()) << live.status;
    v1::CallReply reply;
    ASSERT_TRUE(live.Call(Request("demo.fib", {Int(25)}), &reply).ok());
    std::string page = Scrape(live);
    EXPECT_EQ(Value(page, "turbine_snapshot_duration_seconds_count"), 0);

    ASSERT_TRUE(Flush(live).ok());
    page = Scrape(live);
    EXPECT_EQ(Value(page, "turbine_snapshot_duration_seconds_count"), 1);
    EXPECT_GT(Value(page, "turbine_snapshot_duration_seconds_sum"), 0);
    EXPECT_EQ(Value(page, "turbine_snapshot_tasks_count"), 1);
    EXPECT_EQ(Value(page, "turbine_snapshot_tasks_sum"), 26) << "fib(0) to fib(25)";
    EXPECT_EQ(Value(page, "turbine_last_snapshot_tasks"), 26);
    // The snapshot is in the write-ahead log until RocksDB writes a table file.
    EXPECT_GT(Value(page, R"(turbine_store_disk_bytes{files="sst"})") +
                  Value(page, R"(turbine_store_disk_bytes{files="wal"})"),
              0);
  }
  LiveServer live(dir.str(), options);  // reopening turns the log into table files
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(25)}), &reply).ok());
  ASSERT_EQ(reply.source(), v1::SOURCE_DISK);
  const std::string page = Scrape(live);
  EXPECT_EQ(Value(page, R"(turbine_calls_total{source="disk"})"), 1);
  EXPECT_EQ(Value(page, R"(turbine_calls_total{source="executed"})"), 0);
  EXPECT_GE(Value(page, "turbine_restored_tasks_total"), 1);
  EXPECT_GT(Value(page, R"(turbine_store_disk_bytes{files="sst"})"), 0);
  EXPECT_GE(Value(page, "turbine_store_tasks"), 26);
}

TEST(Metrics, MemoryShowsByKindAndGrowsWithTasksAndEdges) {
  TempDir dir;
  LiveServer live(dir.str(), WithMetrics());
  ASSERT_TRUE(live.status.ok()) << live.status;
  std::string page = Scrape(live);
  const double tasks_before = Value(page, R"(turbine_memory_bytes{kind="tasks"})");
  const double edges_before = Value(page, R"(turbine_memory_bytes{kind="edges"})");
  v1::CallReply reply;
  ASSERT_TRUE(live.Call(Request("demo.fib", {Int(25)}), &reply).ok());  // 26 tasks, 48 edges
  page = Scrape(live);
  const turbine::EngineStats stats = live.server->engine().Stats();
  const double per_task = (Value(page, R"(turbine_memory_bytes{kind="tasks"})") - tasks_before) / 26;
  EXPECT_GE(per_task, 200) << "a task's record, arguments and slots";
  EXPECT_LE(per_task, 2000);
  ASSERT_GE(stats.edges, 48u);
  const double per_edge = (Value(page, R"(turbine_memory_bytes{kind="edges"})") - edges_before) / 48;
  EXPECT_GE(per_edge, 16);
  EXPECT_LE(per_edge, 256);
  EXPECT_GT(Value(page, R"(turbine_memory_bytes{kind="store"})"), 0) << "RocksDB's memtables";
  EXPECT_GE(Value(page, R"(turbine_memory_bytes{kind="other"})"), 0);
  // Stats says the same.
  grpc::ClientContext context;
  v1::StatsReply reply_stats;
  ASSERT_TRUE(live.stub->Stats(&context, v1::StatsRequest(), &reply_stats).ok());
  EXPECT_EQ(static_cast<double>(reply_stats.memory_task_bytes()),
            Value(page, R"(turbine_memory_bytes{kind="tasks"})"));
  EXPECT_EQ(reply_stats.memory_edge_bytes(), stats.edge_bytes);
  EXPECT_GT(reply_stats.memory_store_bytes(), 0u);
}

TEST(Metrics, ScrapesDuringCallsSeeCountersOnlyGrow) {
  TempDir dir;
  LiveServer live(dir.str(), WithMetrics());
  ASSERT_TRUE(live.status.ok()) << live.status;
  std::atomic<bool> done{false};
  std::atomic<int> failed{0};
  std::thread caller([&] {
    for (int i = 0; i < 300; ++i) {
      v1::CallReply reply;
      if (!live.Call(Request("demo.busy", {Int(i % 50), Int(0)}), &reply).ok()) ++failed;
    }
    done.store(true);
  });
  double last_calls = 0;
  double last_executions = 0;
  int scrapes = 0;
  while (!done.load() || scrapes < 3) {
    const std::string page = Scrape(live);
    const double calls = Value(page, R"(turbine_rpcs_total{method="Call"})");
    const double executions = Value(page, "turbine_executions_total");
    EXPECT_GE(calls, last_calls);
    EXPECT_GE(executions, last_executions);
    last_calls = calls;
    last_executions = executions;
    ++scrapes;
  }
  caller.join();
  EXPECT_EQ(failed.load(), 0);
  const std::string page = Scrape(live);
  EXPECT_EQ(Value(page, R"(turbine_rpcs_total{method="Call"})"), 300);
  EXPECT_EQ(Value(page, "turbine_executions_total"), 50);
}

TEST(Metrics, OffByDefaultAndOffLoopbackNeedsInsecure) {
  TempDir dir;
  LiveServer plain(dir.str() + "/plain");
  ASSERT_TRUE(plain.status.ok()) << plain.status;
  EXPECT_EQ(plain.server->metrics_address(), "");

  LiveServer open(dir.str() + "/open", WithMetrics("0.0.0.0:0"));
  EXPECT_EQ(open.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(open.status.message().find("refusing to serve metrics"), std::string::npos)
      << open.status;

  LiveServer trusted(dir.str() + "/trusted", WithMetrics("0.0.0.0:0", /*insecure=*/true));
  ASSERT_TRUE(trusted.status.ok()) << trusted.status;
  const std::string bound = trusted.server->metrics_address();
  ASSERT_TRUE(bound.starts_with("0.0.0.0:")) << bound;
  EXPECT_EQ(HttpGet("127.0.0.1" + bound.substr(bound.find(':'))).status, 200);

  LiveServer local(dir.str() + "/local", WithMetrics("localhost:0"));
  ASSERT_TRUE(local.status.ok()) << local.status;
  EXPECT_TRUE(local.server->metrics_address().starts_with("127.0.0.1:"));
  EXPECT_EQ(HttpGet(local.server->metrics_address(), "/elsewhere").status, 404);
}

TEST(Metrics, BadOrBusyAddressesAreClearErrors) {
  TempDir dir;
  for (const std::string address :
       {"127.0.0.1", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1", "[::1]:0",
        "example.com:9464", ":9464", "127.0.0.1:0,0.0.0.0:80"}) {
    LiveServer live(dir.str(), WithMetrics(address));
    EXPECT_EQ(live.status.code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_NE(live.status.message().find("metrics address '" + address + "'"), std::string::npos)
        << live.status;
  }

  // A port another socket listens on.
  const int busy = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
  ASSERT_EQ(::listen(busy, 1), 0);
  socklen_t length = sizeof(local);
  ASSERT_EQ(::getsockname(busy, reinterpret_cast<sockaddr*>(&local), &length), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(local.sin_port));
  {
    LiveServer live(dir.str(), WithMetrics(taken));
    EXPECT_EQ(live.status.code(), absl::StatusCode::kUnavailable) << live.status;
    EXPECT_NE(live.status.message().find("cannot serve metrics on " + taken), std::string::npos)
        << live.status;
  }
  ::close(busy);
  // The failed start let go of the data dir.
  LiveServer after(dir.str());
  EXPECT_TRUE(after.status.ok()) << after.status;
}

}  // namespace
