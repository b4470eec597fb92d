// remote_bench.cc — the daemon's benchmarks (names: docs/ARCHITECTURE.md, "Benchmarks"): what a
// call costs over gRPC.
//
//   grpc-empty-unary          an RPC that does nothing (the health check) on the same
//                             server: the floor any remote call pays
//   remote-cached-hit         a unary Call of a cached demo.busy(1, 1)
//   remote-stream-cached-hit  10,000 cached calls pipelined on one CallStream; calls per
//                             second = calls_per_op / wall time (Google Benchmark's own
//                             rates divide by CPU time, which leaves out the server's threads)
//   remote-batch-cached-hit   100,000 cached calls pipelined through the client library's
//                             CallStream, which batches them (rpc CallBatches)
//   unix-socket-round-trip    one byte there and back over a unix socket pair between two
//                             threads: the floor under any call, without gRPC
//
// The server runs in this process (turbine::server::Server, as turbined does) on a unix
// socket in a temp dir; the client talks to it through that socket like any other process
// would. Read the real (wall) time: the server's work happens on gRPC and engine threads.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "turbine/client/call_stream.h"
#include "turbine/client/client.h"
#include "turbine/server/server.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::bench {
namespace {

namespace fs = std::filesystem;

// RemoteFixture is one server and one channel for the whole binary: starting a server per
// benchmark run would measure connection set-up, not calls.
struct RemoteFixture {
  RemoteFixture() {
    dir = fs::temp_directory_path() / ("turbine-remote-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    auto started = server::Server::Start(server::ServerOptions{.data_dir = dir.string()});
    if (!started.ok()) {
      error = std::string(started.status().message());
      return;
    }
    server = std::move(*started);
    channel = grpc::CreateChannel(server->addresses().front(), grpc::InsecureChannelCredentials());
    stub = v1::Turbine::NewStub(channel);
    health = grpc::health::v1::Health::NewStub(channel);
  }
  ~RemoteFixture() {
    stub.reset();
    health.reset();
    channel.reset();
    server.reset();
    fs::remove_all(dir);
  }

  fs::path dir;
  std::string error;
  std::unique_ptr<server::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Turbine::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

RemoteFixture& Remote() {
  static RemoteFixture fixture;
  return fixture;
}

v1::CallRequest BusyRequest(int64_t key, int64_t micros) {
  v1::CallRequest request;
  request.set_function("demo.busy");
  request.add_args()->set_int_value(key);
  request.add_args()->set_int_value(micros);
  return request;
}

// Warm makes sure demo.busy(1, 1) is cached; false if the call failed.
bool Warm(RemoteFixture& remote) {
  grpc::ClientContext context;
  v1::CallReply reply;
  return remote.stub->Call(&context, BusyRequest(1, 1), &reply).ok() &&
         reply.value().int_value() == 1;
}

void GrpcEmptyUnary(benchmark::State& state) {
  RemoteFixture& remote = Remote();
  if (!remote.error.empty()) return state.SkipWithError(remote.error.c_str());
  const grpc::health::v1::HealthCheckRequest request;
  for (auto _ : state) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckResponse response;
    if (!remote.health->Check(&context, request, &response).ok()) {
      return state.SkipWithError("health check failed");
    }
  }
}

void RemoteCachedHit(benchmark::State& state) {
  RemoteFixture& remote = Remote();
  if (!remote.error.empty()) return state.SkipWithError(remote.error.c_str());
  if (!Warm(remote)) return state.SkipWithError("warm-up call failed");
  const v1::CallRequest request = BusyRequest(1, 1);
  for (auto _ : state) {
    grpc::ClientContext context;
    v1::CallReply reply;
    if (!remote.stub->Call(&context, request, &reply).ok() || reply.value().int_value() != 1) {
      return state.SkipWithError("call failed");
    }
    if (reply.source() != v1::SOURCE_MEMORY) return state.SkipWithError("not a cache hit");
  }
}

// Calls per stream in remote-stream-cached-hit: enough that opening the stream is noise.
constexpr int64_t kStreamBatch = 10'000;

// RemoteStreamCachedHit keeps the stream full: a writer thread sends every request of the
// batch while this thread reads replies, so many calls are in flight at once.
void RemoteStreamCachedHit(benchmark::State& state) {
  RemoteFixture& remote = Remote();
  if (!remote.error.empty()) return state.SkipWithError(remote.error.c_str());
  if (!Warm(remote)) return state.SkipWithError("warm-up call failed");
  constexpr int64_t batch = kStreamBatch;
  for (auto _ : state) {
    grpc::ClientContext context;
    auto stream = remote.stub->CallStream(&context);
    std::thread writer([&stream] {
      v1::CallRequest request = BusyRequest(1, 1);
      for (int64_t i = 0; i < batch; ++i) {
        request.set_id(static_cast<uint64_t>(i) + 1);
        if (!stream->Write(request)) return;
      }
      stream->WritesDone();
    });
    v1::CallReply reply;
    int64_t replies = 0;
    while (stream->Read(&reply)) ++replies;
    writer.join();
    if (!stream->Finish().ok() || replies != batch) {
      return state.SkipWithError("the stream lost calls");
    }
  }
  state.counters["calls_per_op"] = static_cast<double>(batch);
}

// Calls per op in remote-batch-cached-hit: batches reach their full size, and a run is long
// enough for the rate to settle.
constexpr int64_t kBatchedCalls = 100'000;

// RemoteBatchCachedHit sends every call from this thread while the library's reply thread
// counts the replies: the client batches the calls that queue behind each write.
void RemoteBatchCachedHit(benchmark::State& state) {
  RemoteFixture& remote = Remote();
  if (!remote.error.empty()) return state.SkipWithError(remote.error.c_str());
  if (!Warm(remote)) return state.SkipWithError("warm-up call failed");
  auto client = client::Client::Connect({.address = remote.server->addresses().front()});
  if (!client.ok()) return state.SkipWithError("cannot connect the client");
  const v1::CallRequest request = BusyRequest(1, 1);
  for (auto _ : state) {
    std::atomic<int64_t> hits{0};
    std::unique_ptr<client::CallStream> stream =
        (*client)
            ->OpenCallStream([&hits](client::CallResult result) {
              if (result.value.ok() && result.source == v1::SOURCE_MEMORY) hits.fetch_add(1);
            })
            .value();
    for (int64_t i = 0; i < kBatchedCalls; ++i) {
      if (!stream->Send(request).ok()) return state.SkipWithError("send failed");
    }
    if (!stream->Close().ok() || hits.load() != kBatchedCalls) {
      return state.SkipWithError("the stream lost calls or missed the cache");
    }
  }
  state.counters["calls_per_op"] = static_cast<double>(kBatchedCalls);
}

void UnixSocketRoundTrip(benchmark::State& state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return state.SkipWithError("socketpair");
  std::thread echo([fd = fds[1]] {
    char byte;
    while (::read(fd, &byte, 1) == 1) {
      if (::write(fd, &byte, 1) != 1) break;
    }
  });
  char byte = 'x';
  for (auto _ : state) {
    if (::write(fds[0], &byte, 1) != 1 || ::read(fds[0], &byte, 1) != 1) {
      state.SkipWithError("round trip failed");
      break;
    }
  }
  ::shutdown(fds[0], SHUT_RDWR);
  echo.join();
  ::close(fds[0]);
  ::close(fds[1]);
}

// No Arg or UseRealTime: they would add suffixes to the names docs/ARCHITECTURE.md fixes. Real time
// is in the JSON regardless.
BENCHMARK(GrpcEmptyUnary)->Name("grpc-empty-unary");
BENCHMARK(RemoteCachedHit)->Name("remote-cached-hit");
BENCHMARK(RemoteStreamCachedHit)->Name("remote-stream-cached-hit")->Unit(benchmark::kMillisecond);
BENCHMARK(RemoteBatchCachedHit)->Name("remote-batch-cached-hit")->Unit(benchmark::kMillisecond);
BENCHMARK(UnixSocketRoundTrip)->Name("unix-socket-round-trip");

}  // namespace
}  // namespace turbine::bench

BENCHMARK_MAIN();
