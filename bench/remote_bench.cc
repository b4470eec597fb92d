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
//   grpc-stream-floor         remote-stream-cached-hit's client against a gRPC server that
//                             answers each message with a fixed reply of the same size and
//                             does nothing else: gRPC's own cost of a message each way
//   remote-tcp-cached-hit, remote-tcp-stream-cached-hit
//                             the same over TCP on loopback (127.0.0.1), plain text
//   remote-tls-cached-hit, remote-tls-stream-cached-hit, remote-tls-batch-cached-hit
//                             the same over TCP on loopback with TLS (a certificate openssl
//                             makes at start, in the temp dir): the cost of encryption
//
// The servers run in this process (turbine::server::Server, as turbined does): one on a unix
// socket in a temp dir and on a plain TCP port, one with TLS on another TCP port; the client
// talks to them through those sockets like any other process would. Read the real (wall)
// time: the server's work happens on gRPC and engine threads.
#include <benchmark/benchmark.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "turbine/client/call_stream.h"
#include "turbine/client/client.h"
#include "turbine/engine.h"
#include "turbine/server/server.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::bench {
namespace {

namespace fs = std::filesystem;

// Target is one way to reach a server: a channel and its stubs.
struct Target {
  Target() = default;
  Target(const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials)
      : address(address),
        channel(grpc::CreateChannel(address, std::move(credentials))),
        stub(v1::Turbine::NewStub(channel)),
        health(grpc::health::v1::Health::NewStub(channel)) {}
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Turbine::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

enum class Transport { kUnixSocket, kTcp, kTls };

// FloorReactor answers every message of a stream with the same bytes: a serialized
// CallReply like a cached hit's. It writes as the daemon's CallStream does: one write at a
// time, replies queued behind it, a buffer hint while more wait.
class FloorReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit FloorReactor(const grpc::ByteBuffer& reply) : reply_(reply) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (!ok) {
      reads_done_ = true;
      if (!writing_) FinishLocked();
      return;
    }
    ++queued_;
    if (!writing_) WriteLocked();
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (ok && queued_ > 0) return WriteLocked();
    if (reads_done_ || !ok) FinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  // FinishLocked finishes once: a broken write and the end of reads may both ask.
  void FinishLocked() {
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  void WriteLocked() {
    --queued_;
    writing_ = true;
    grpc::WriteOptions options;
    if (queued_ > 0) options.set_buffer_hint();
    StartWrite(&reply_, options);
  }

  const grpc::ByteBuffer& reply_;
  grpc::ByteBuffer request_;
  std::mutex mu_;
  int64_t queued_ = 0;
  bool writing_ = false;
  bool reads_done_ = false;
  bool finished_ = false;
};

class FloorService final : public grpc::CallbackGenericService {
 public:
  FloorService() {
    v1::CallReply reply;
    reply.set_id(1);
    reply.mutable_value()->set_int_value(1);
    reply.set_source(v1::SOURCE_MEMORY);
    reply.set_micros(1);
    const std::string bytes = reply.SerializeAsString();
    grpc::Slice slice(bytes);
    reply_ = grpc::ByteBuffer(&slice, 1);
  }
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new FloorReactor(reply_);
  }

 private:
  grpc::ByteBuffer reply_;
};

// RemoteFixture is the servers and channels for the whole binary: starting a server per
// benchmark run would measure connection set-up, not calls.
struct RemoteFixture {
  RemoteFixture() {
    dir = fs::temp_directory_path() / ("turbine-remote-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto started = server::Server::Start(
        server::ServerOptions{.data_dir = (dir / "plain").string(),
                              .listen = {"unix:" + (dir / "plain.sock").string(), "127.0.0.1:0"}});
    if (!started.ok()) {
      error = std::string(started.status().message());
      return;
    }
    plain_server = std::move(*started);
    targets[static_cast<int>(Transport::kUnixSocket)] =
        Target(plain_server->addresses()[0], grpc::InsecureChannelCredentials());
    targets[static_cast<int>(Transport::kTcp)] =
        Target(plain_server->addresses()[1], grpc::InsecureChannelCredentials());
    StartTls();
    StartFloor();
  }
  ~RemoteFixture() {
    for (Target& target : targets) target = Target();
    floor_target = Target();
    if (floor_server != nullptr) floor_server->Shutdown();
    tls_server.reset();
    plain_server.reset();
    fs::remove_all(dir);
  }

  // StartTls makes a self-signed certificate for 127.0.0.1 and serves TLS with it; on
  // failure the TLS benchmarks say why (tls_error).
  void StartTls() {
    const std::string cert = (dir / "cert.pem").string();
    const std::string key = (dir / "key.pem").string();
    const std::string openssl =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    if (std::system(openssl.c_str()) != 0) {
      tls_error = "openssl could not make a certificate (scripts/setup installs openssl)";
      return;
    }
    auto started = server::Server::Start(server::ServerOptions{.data_dir = (dir / "tls").string(),
                                                               .listen = {"127.0.0.1:0"},
                                                               .tls_cert_file = cert,
                                                               .tls_key_file = key});
    if (!started.ok()) {
      tls_error = std::string(started.status().message());
      return;
    }
    tls_server = std::move(*started);
    std::ifstream in(cert);
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    targets[static_cast<int>(Transport::kTls)] =
        Target(tls_server->addresses()[0], grpc::SslCredentials(ssl));
  }

  // StartFloor serves grpc-stream-floor's echo on a unix socket of its own.
  void StartFloor() {
    const std::string address = "unix:" + (dir / "floor.sock").string();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterCallbackGenericService(&floor_service);
    floor_server = builder.BuildAndStart();
    if (floor_server != nullptr) {
      floor_target = Target(address, grpc::InsecureChannelCredentials());
    }
  }

  // Reach returns the target for `transport`, or nullptr after telling `state` why not.
  Target* Reach(benchmark::State& state, Transport transport) {
    const std::string& why = error.empty() && transport == Transport::kTls ? tls_error : error;
    if (!why.empty()) {
      state.SkipWithError(why.c_str());
      return nullptr;
    }
    return &targets[static_cast<int>(transport)];
  }

  // ClientOptions connects the client library to `transport`'s server.
  client::ConnectOptions ClientOptions(Transport transport) {
    client::ConnectOptions options{.address = targets[static_cast<int>(transport)].address};
    if (transport == Transport::kTls) {
      options.tls = client::TlsOptions{.ca_file = (dir / "cert.pem").string()};
    }
    return options;
  }

  fs::path dir;
  std::string error, tls_error;
  std::unique_ptr<server::Server> plain_server;  // the unix socket and plain TCP
  std::unique_ptr<server::Server> tls_server;
  Target targets[3];
  FloorService floor_service;
  std::unique_ptr<grpc::Server> floor_server;
  Target floor_target;
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
bool Warm(Target& target) {
  grpc::ClientContext context;
  v1::CallReply reply;
  return target.stub->Call(&context, BusyRequest(1, 1), &reply).ok() &&
         reply.value().int_value() == 1;
}

void GrpcEmptyUnary(benchmark::State& state) {
  Target* target = Remote().Reach(state, Transport::kUnixSocket);
  if (target == nullptr) return;
  const grpc::health::v1::HealthCheckRequest request;
  for (auto _ : state) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckResponse response;
    if (!target->health->Check(&context, request, &response).ok()) {
      return state.SkipWithError("health check failed");
    }
  }
}

void RemoteCachedHit(benchmark::State& state, Transport transport) {
  Target* target = Remote().Reach(state, transport);
  if (target == nullptr) return;
  if (!Warm(*target)) return state.SkipWithError("warm-up call failed");
  const v1::CallRequest request = BusyRequest(1, 1);
  for (auto _ : state) {
    grpc::ClientContext context;
    v1::CallReply reply;
    if (!target->stub->Call(&context, request, &reply).ok() || reply.value().int_value() != 1) {
      return state.SkipWithError("call failed");
    }
    if (reply.source() != v1::SOURCE_MEMORY) return state.SkipWithError("not a cache hit");
  }
}

// Calls per stream in remote-stream-cached-hit: enough that opening the stream is noise.
constexpr int64_t kStreamBatch = 10'000;

// How the stream benchmarks' client writes its requests. kCorked lets gRPC hold the
// requests and flushes every kCorkedWrites-th, as a pipelining client does (and as the
// daemon writes its replies): a flushed write costs a syscall and an HTTP/2 frame of its
// own. kUncorked flushes every request, which caps a stream at gRPC's cost per flushed
// message (grpc-stream-floor-uncorked shows that cap with no daemon behind it).
enum class Writes { kCorked, kUncorked };
constexpr int64_t kCorkedWrites = 32;

// StreamCalls sends a batch of cached calls on one CallStream of `target` and reads every
// reply. The stream is kept full: a writer thread sends every request while this thread
// reads replies, so many calls are in flight at once. Every call is one message each way.
void StreamCalls(benchmark::State& state, Target& target, Writes writes) {
  constexpr int64_t batch = kStreamBatch;
  const int64_t flush_every = writes == Writes::kCorked ? kCorkedWrites : 1;
  for (auto _ : state) {
    grpc::ClientContext context;
    auto stream = target.stub->CallStream(&context);
    std::thread writer([&stream, flush_every] {
      v1::CallRequest request = BusyRequest(1, 1);
      for (int64_t i = 0; i < batch; ++i) {
        request.set_id(static_cast<uint64_t>(i) + 1);
        grpc::WriteOptions options;
        if ((i + 1) % flush_every != 0) options.set_buffer_hint();
        if (!stream->Write(request, options)) return;
      }
      stream->WritesDone();  // also flushes the last requests held
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

void RemoteStreamCachedHit(benchmark::State& state, Transport transport, Writes writes) {
  Target* target = Remote().Reach(state, transport);
  if (target == nullptr) return;
  if (!Warm(*target)) return state.SkipWithError("warm-up call failed");
  StreamCalls(state, *target, writes);
}

void GrpcStreamFloor(benchmark::State& state, Writes writes) {
  RemoteFixture& remote = Remote();
  if (remote.floor_server == nullptr) return state.SkipWithError("the floor server did not start");
  StreamCalls(state, remote.floor_target, writes);
}

// Calls per op in remote-batch-cached-hit: batches reach their full size, and a run is long
// enough for the rate to settle.
constexpr int64_t kBatchedCalls = 100'000;

// RemoteBatchCachedHit sends every call from this thread while the library's reply thread
// counts the replies: the client batches the calls that queue behind each write.
void RemoteBatchCachedHit(benchmark::State& state, Transport transport) {
  Target* target = Remote().Reach(state, transport);
  if (target == nullptr) return;
  if (!Warm(*target)) return state.SkipWithError("warm-up call failed");
  auto client = client::Client::Connect(Remote().ClientOptions(transport));
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
BENCHMARK_CAPTURE(RemoteCachedHit, unix, Transport::kUnixSocket)->Name("remote-cached-hit");
BENCHMARK_CAPTURE(RemoteStreamCachedHit, unix, Transport::kUnixSocket, Writes::kCorked)
    ->Name("remote-stream-cached-hit")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RemoteStreamCachedHit, unix_uncorked, Transport::kUnixSocket, Writes::kUncorked)
    ->Name("remote-stream-uncorked-cached-hit")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RemoteBatchCachedHit, unix, Transport::kUnixSocket)
    ->Name("remote-batch-cached-hit")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(UnixSocketRoundTrip)->Name("unix-socket-round-trip");
BENCHMARK_CAPTURE(GrpcStreamFloor, corked, Writes::kCorked)
    ->Name("grpc-stream-floor")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(GrpcStreamFloor, uncorked, Writes::kUncorked)
    ->Name("grpc-stream-floor-uncorked")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RemoteCachedHit, tcp, Transport::kTcp)->Name("remote-tcp-cached-hit");
BENCHMARK_CAPTURE(RemoteStreamCachedHit, tcp, Transport::kTcp, Writes::kCorked)
    ->Name("remote-tcp-stream-cached-hit")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RemoteCachedHit, tls, Transport::kTls)->Name("remote-tls-cached-hit");
BENCHMARK_CAPTURE(RemoteStreamCachedHit, tls, Transport::kTls, Writes::kCorked)
    ->Name("remote-tls-stream-cached-hit")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RemoteBatchCachedHit, tls, Transport::kTls)
    ->Name("remote-tls-batch-cached-hit")
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace turbine::bench

int main(int argc, char** argv) {
  // The servers here run as in turbined, which turns off the deadlock detection that
  // Debian's Abseil leaves on (engine.h); gRPC's own locks are absl::Mutex too.
  turbine::DisableMutexDeadlockDetection();
  benchmark::AddCustomContext("absl_deadlock_detection", "off");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
