// server.cc — opening the data dir, starting the engine and gRPC, and stopping cleanly.
#include "turbine/server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "listeners.h"
#include "metrics.h"
#include "service.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace turbine::server {
namespace {

namespace fs = std::filesystem;

// DataDirLock is an flock on <data-dir>/turbined.lock, held for the server's lifetime: a
// second daemon on the same directory is refused before it touches the socket or the db.
class DataDirLock {
 public:
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(const fs::path& dir) {
    const fs::path path = dir / "turbined.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::PermissionDeniedError("cannot open " + path.string() + ": " +
                                         std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      const ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
      ::close(fd);
      const std::string holder = n > 0 ? " (pid " + std::string(pid, static_cast<size_t>(n)) + ")" : "";
      return absl::FailedPreconditionError("another turbined" + holder + " is serving " +
                                           dir.string() + "; stop it or use another --data-dir");
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The pid is only a hint for the message above; the lock is what matters.
    }
    return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
  }
  ~DataDirLock() { ::close(fd_); }  // closing releases the flock

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

constexpr std::string_view kUnixPrefix = "unix:";

bool IsUnix(const std::string& address) { return address.starts_with(kUnixPrefix); }

// HostOf splits "host:port" / "[v6]:port" and returns the host.
std::string HostOf(const std::string& address) {
  if (address.starts_with("[")) {
    const size_t end = address.find(']');
    return end == std::string::npos ? address : address.substr(1, end - 1);
  }
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

absl::Status CheckUnixPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError("socket path " + path + " is too long for a unix socket (" +
                                      std::to_string(path.size()) +
                                      " bytes, at most 107): use a shorter --data-dir or --listen");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError("cannot read " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

bool IsLoopback(const std::string& address) {
  if (IsUnix(address)) return true;
  const std::string host = HostOf(address);
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

struct Server::State {
  ServerOptions options;
  std::unique_ptr<DataDirLock> lock;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<storage::RocksBackingStore> backing;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<TurbineService> service;
  std::unique_ptr<Metrics> metrics;  // reads the service: declared (so destroyed) after it
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<ConnectionAcceptor> acceptor;  // hands connections to grpc_server
  std::vector<std::string> addresses;
  std::vector<std::string> socket_paths;  // removed at shutdown
  std::string report;

  std::mutex mu;
  std::condition_variable changed;
  bool shutdown_requested = false;
  bool stopping = false;
  bool stopped = false;

  void Stop();
};

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto state = std::make_unique<State>();
  std::error_code error;
  const fs::path data_dir = fs::absolute(options.data_dir, error);
  fs::create_directories(data_dir, error);
  if (error || !fs::is_directory(data_dir)) {
    return absl::PermissionDeniedError("cannot use data dir " + options.data_dir + ": " +
                                       (error ? error.message() : "not a directory"));
  }
  fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, error);
  if (options.listen.empty()) {
    options.listen.push_back(std::string(kUnixPrefix) + (data_dir / "turbined.sock").string());
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  const bool tls = !options.tls_cert_file.empty();
  for (const std::string& address : options.listen) {
    if (IsUnix(address)) {
      absl::Status ok = CheckUnixPath(address.substr(kUnixPrefix.size()));
      if (!ok.ok()) return ok;
    } else if (address.find(':') == std::string::npos) {
      return absl::InvalidArgumentError("listen address '" + address +
                                        "' is neither unix:PATH nor HOST:PORT");
    } else if (!IsLoopback(address) && !tls && !options.insecure) {
      return absl::InvalidArgumentError(
          "refusing to serve " + address +
          " without TLS: anyone on the network could call it. Give a certificate and key, "
          "or --insecure if the network is trusted");
    }
  }

  std::string metrics_address;
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::string> checked =
        CheckMetricsAddress(options.metrics_listen, options.insecure);
    if (!checked.ok()) return checked.status();
    metrics_address = *checked;
  }

  absl::StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(data_dir);
  if (!lock.ok()) return lock.status();
  state->lock = std::move(*lock);

  storage::OpenReport report;
  absl::StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open(storage::StoreOptions{.data_dir = data_dir.string()}, &report);
  if (!store.ok()) return store.status();
  state->store = std::move(*store);
  state->report = report.created ? "created a new cache" : "opened the cache";
  if (!report.moved_aside.empty()) {
    state->report += "; the old one was unusable (" + report.reason + ") and was moved to " +
                     report.moved_aside;
  }
  state->backing = std::make_unique<storage::RocksBackingStore>(state->store.get());
  state->engine = std::make_unique<Engine>(EngineOptions{.worker_threads = options.workers,
                                                         .backing_store = state->backing.get(),
                                                         .snapshot_interval =
                                                             options.snapshot_interval});

  State* raw_state = state.get();
  state->service = std::make_unique<TurbineService>(*state->engine, options.auth_token, [raw_state] {
    std::lock_guard lock(raw_state->mu);
    raw_state->shutdown_requested = true;
    raw_state->changed.notify_all();
  }, ReplyLimits{.stream_bytes = options.stream_reply_buffer_bytes,
                 .daemon_bytes = options.reply_buffer_bytes});

  if (!metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<Metrics>> metrics =
        Metrics::Start(metrics_address, *state->engine, *state->service, *state->store);
    if (!metrics.ok()) return metrics.status();
    state->metrics = std::move(*metrics);
  }

  std::shared_ptr<grpc::ServerCredentials> tcp_credentials = grpc::InsecureServerCredentials();
  if (tls) {
    absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file);
    absl::StatusOr<std::string> key = ReadFile(options.tls_key_file);
    if (!cert.ok()) return cert.status();
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    tcp_credentials = grpc::SslServerCredentials(ssl);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(state->service.get());
  ConfigureConnections(options, builder);
  // turbined listens and accepts itself and hands connections to gRPC (listeners.h says why).
  std::vector<ConnectionAcceptor::Port> ports;
  for (const std::string& address : options.listen) {
    // Sockets are created owner-only: the umask applies while they are bound.
    const mode_t old_umask = ::umask(0077);
    absl::StatusOr<BoundAddress> bound = Listen(address);
    ::umask(old_umask);
    if (!bound.ok()) return bound.status();
    if (IsUnix(address)) {
      ::chmod(address.substr(kUnixPrefix.size()).c_str(), 0600);
      state->socket_paths.push_back(address.substr(kUnixPrefix.size()));
    }
    state->addresses.push_back(bound->address);
    ports.push_back({.bound = std::move(*bound),
                     .handoff = builder.experimental().AddExternalConnectionAcceptor(
                         grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
                         IsUnix(address) ? grpc::InsecureServerCredentials() : tcp_credentials)});
  }
  state->grpc_server = builder.BuildAndStart();
  if (state->grpc_server == nullptr) return absl::UnavailableError("cannot start the gRPC server");
  absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> acceptor =
      ConnectionAcceptor::Start(std::move(ports), options.max_connections);
  if (!acceptor.ok()) return acceptor.status();
  state->acceptor = std::move(*acceptor);
  state->grpc_server->GetHealthCheckService()->SetServingStatus(true);
  state->options = std::move(options);
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

Server::Server(std::unique_ptr<State> state) : state_(std::move(state)) {}

Server::~Server() {
  Shutdown();
  Wait();
  // Engine last but the store: its destructor writes the final snapshot.
  state_->engine.reset();
  state_->backing.reset();
  state_->store.reset();
}

const std::vector<std::string>& Server::addresses() const { return state_->addresses; }
std::string Server::metrics_address() const {
  return state_->metrics == nullptr ? "" : state_->metrics->address();
}
Engine& Server::engine() { return *state_->engine; }
std::string Server::store_report() const { return state_->report; }

void Server::Shutdown() {
  std::lock_guard lock(state_->mu);
  state_->shutdown_requested = true;
  state_->changed.notify_all();
}

void Server::Wait() {
  std::unique_lock lock(state_->mu);
  state_->changed.wait(lock, [this] { return state_->shutdown_requested; });
  if (state_->stopping) {  // another thread is stopping it: wait for that
    state_->changed.wait(lock, [this] { return state_->stopped; });
    return;
  }
  state_->stopping = true;
  lock.unlock();
  state_->Stop();
  lock.lock();
  state_->stopped = true;
  state_->changed.notify_all();
}

void Server::State::Stop() {
  if (grpc_server == nullptr) return;
  grpc_server->GetHealthCheckService()->SetServingStatus(false);
  // Calls already accepted get the grace period to finish; new ones are refused. Then gRPC
  // stops at once: it cancels what is left (watches, idle streams) and closes connections,
  // which it would otherwise wait on until the deadline even when they are idle.
  service->StartDraining();
  service->WaitUntilIdle(std::chrono::steady_clock::now() + options.shutdown_grace);
  acceptor.reset();
  grpc_server->Shutdown(std::chrono::system_clock::now());
  grpc_server->Wait();
  grpc_server.reset();
  metrics.reset();  // before the service it reads; it served until the calls were done
  service.reset();  // finishes SetInputs / Flush jobs already accepted
  if (absl::Status flushed = engine->Flush(); !flushed.ok()) {
    spdlog::error("final snapshot failed, the last results are lost: {}", std::string(flushed.message()));
  }
  std::error_code error;
  for (const std::string& path : socket_paths) std::filesystem::remove(path, error);
}

}  // namespace turbine::server
