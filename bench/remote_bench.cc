// remote_bench.cc — the daemon's benchmarks (names: docs/ARCHITECTURE.md, "Benchmarks"): what a
// call costs over gRPC.
//
//   grpc-empty-unary          an RPC that does nothing (the health check) on the same
//                             server: the floor any remote call pays
//   remote-cached-hit         a unary Call of a cached demo.busy(1, 1)
//   remote-stream-cached-hit  10,000 cached calls pipelined on one CallStream; calls per
//                             second = calls_per_op / wall time (Google Benchmark's own
//                             rates divide by CPU time, which leaves out the server's threads)
//
// The server runs in this process (turbine::server::Server, as turbined does) on a unix
// socket in a temp dir; the client talks to it through that socket like any other process
// would. Read the real (wall) time: the server's work happens on gRPC and engine threads.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
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

// No Arg or UseRealTime: they would add suffixes to the names docs/ARCHITECTURE.md fixes. Real time
// is in the JSON regardless.
BENCHMARK(GrpcEmptyUnary)->Name("grpc-empty-unary");
BENCHMARK(RemoteCachedHit)->Name("remote-cached-hit");
BENCHMARK(RemoteStreamCachedHit)->Name("remote-stream-cached-hit")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace turbine::bench

BENCHMARK_MAIN();
