// server.cc — opening the data dir, starting the engine and gRPC, and stopping cleanly.
#include "turbine/server/server.h"

#include <absl/strings/str_cat.h>
#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "address.h"
#include "bearer_token.h"
#include "listeners.h"
#include "metrics.h"
#include "service.h"
#include "status_page.h"
#include "trace_file.h"
#include "turbine/server/export.h"
#include "turbine/storage/persistent_engine.h"
#include "turbine/tls/pem_files.h"

namespace turbine::server {
namespace {

// kLeastUsefulMemoryLimit is about what the daemon's resident set is idle (its code, the
// store's least caches, gRPC's threads): a limit under it cannot be met.
constexpr uint64_t kLeastUsefulMemoryLimit = uint64_t{32} << 20;

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
      const std::string holder =
          n > 0 ? " (pid " + std::string(pid, static_cast<size_t>(n)) + ")" : "";
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

// CheckWorkers: more threads than the engine takes is a mistake, not a wish to be clamped.
absl::Status CheckWorkers(int workers) {
  if (workers >= 0 && workers <= kMaxWorkerThreads) return absl::OkStatus();
  return absl::InvalidArgumentError("workers " + std::to_string(workers) +
                                    " is out of range: 0 (one per core) to " +
                                    std::to_string(kMaxWorkerThreads));
}

}  // namespace

struct Server::State {
  ServerOptions options;
  std::unique_ptr<DataDirLock> lock;
  std::unique_ptr<storage::PersistentEngine> persistent;  // the store and the engine
  std::unique_ptr<TraceFile> trace_file;  // --trace-file: finished before the engine goes
  std::unique_ptr<TurbineService> service;
  std::unique_ptr<Metrics> metrics;  // reads the service: declared (so destroyed) after it
  std::unique_ptr<StatusPage> status_page;  // likewise
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<ConnectionAcceptor> acceptor;  // hands connections to grpc_server
  std::vector<std::string> addresses;
  // The unix sockets bound, removed at shutdown if still there (the same file: the path
  // may have been replaced meanwhile by someone else's, which may even reuse the inode
  // number, but not with the same change time).
  struct SocketPath {
    std::string path;
    dev_t device = 0;
    ino_t inode = 0;
    timespec changed{};
  };
  std::vector<SocketPath> socket_paths;
  std::string report;

  std::mutex mu;
  std::condition_variable changed;
  bool shutdown_requested = false;
  bool stopping = false;
  bool stopped = false;

  absl::Status StartGrpc(ServerOptions& options, const std::vector<ListenAddress>& listen,
                         const OpenFileLimit& open_files,
                         std::shared_ptr<grpc::ServerCredentials> tcp_credentials);
  void Stop();
};

namespace {

// DataDirPath is the data directory's absolute path. Normal, so the socket's address in
// the log is the one a user types (no "/./").
fs::path DataDirPath(const std::string& dir) {
  std::error_code error;
  return fs::absolute(dir, error).lexically_normal();
}

// PrepareDataDir creates the data directory (owner-only). Only once the options are
// checked: a refused start leaves nothing behind. An existing directory keeps its mode: it
// was made owner-only too, and `--data-dir /tmp` (or `.`) took the sticky bit off /tmp and
// shut everyone else out of it. One others may read is said: the cache files in it are
// theirs to read (the socket is owner-only either way).
absl::Status PrepareDataDir(const std::string& dir, const fs::path& data_dir) {
  std::error_code error;
  const bool created = fs::create_directories(data_dir, error);
  if (error || !fs::is_directory(data_dir)) {
    return absl::PermissionDeniedError("cannot use data dir " + dir + ": " +
                                       (error ? error.message() : "not a directory"));
  }
  if (created) {
    fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, error);
    return absl::OkStatus();
  }
  const fs::perms perms = fs::status(data_dir, error).permissions();
  if (!error && (perms & (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none) {
    spdlog::warn(
        "data dir {} is open to others (mode {:04o}): they may read the cache in it; turbined "
        "leaves the mode of a directory it did not make as it is (chmod 700 it to keep the "
        "cache private)",
        dir, static_cast<unsigned>(perms & fs::perms::mask));
  }
  return absl::OkStatus();
}

// SameListener: two addresses that name one socket, spelled alike or not quite (a TCP port
// 0 picks a new one each time; two names of one host are not told apart).
bool SameListener(const ListenAddress& a, const ListenAddress& b) {
  if (a.unix_socket || b.unix_socket) {
    const auto canonical = [](const std::string& path) {
      std::error_code error;
      std::filesystem::path absolute = std::filesystem::absolute(path, error);
      return (error ? std::filesystem::path(path) : absolute).lexically_normal();
    };
    return a.unix_socket && b.unix_socket && canonical(a.path) == canonical(b.path);
  }
  const auto same_letters = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  };
  return a.port != 0 && a.port == b.port && std::ranges::equal(a.host, b.host, same_letters);
}

// CheckListenAddresses parses every listen address and refuses plain TCP off this
// machine unless the options allow it, and an address given twice (the second listener
// would find the first one's socket taken, as if another process held it).
absl::StatusOr<std::vector<ListenAddress>> CheckListenAddresses(const ServerOptions& options) {
  const bool tls = !options.tls_cert_file.empty();
  std::vector<ListenAddress> addresses;
  for (const std::string& text : options.listen) {
    absl::StatusOr<ListenAddress> address = ParseListenAddress(text);
    if (!address.ok()) {
      return absl::InvalidArgumentError("listen address '" + text +
                                        "': " + std::string(address.status().message()));
    }
    for (const ListenAddress& earlier : addresses) {
      if (SameListener(earlier, *address)) {
        return absl::InvalidArgumentError(
            "listen address '" + text + "' is given twice" +
            (earlier.text == text ? "" : " (as '" + earlier.text + "')"));
      }
    }
    if (!IsLoopback(*address) && !tls && !options.insecure) {
      return absl::InvalidArgumentError(
          "refusing to serve " + text +
          " without TLS: anyone on the network could call it. Give a certificate and key, "
          "or --insecure if the network is trusted");
    }
    addresses.push_back(std::move(*address));
  }
  return addresses;
}

// TcpCredentials reads the TLS certificate and key, if any, and the CAs that client
// certificates must be signed by (mutual TLS), if any.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TcpCredentials(
    const ServerOptions& options) {
  if (options.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  absl::StatusOr<tls::KeyPair> pair = tls::ReadKeyPair(options.tls_cert_file, options.tls_key_file);
  if (!pair.ok()) return pair.status();
  for (const std::string* problem : {&pair->validity, &pair->not_for_server}) {
    if (problem->empty()) continue;
    spdlog::warn("the TLS certificate {} {}: every client will refuse it until it is replaced",
                 options.tls_cert_file, *problem);
  }
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({pair->key_pem, pair->cert_pem});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> client_ca =
        tls::ReadCaFile(options.tls_client_ca_file, "client CA");
    if (!client_ca.ok()) return client_ca.status();
    ssl.pem_root_certs = *std::move(client_ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

std::string StoreReport(const storage::OpenReport& report) {
  std::string text = report.created ? "created a new cache" : "opened the cache";
  if (!report.moved_aside.empty()) {
    text +=
        "; the old one was unusable (" + report.reason + ") and was moved to " + report.moved_aside;
    if (report.carried_inputs > 0) {
      text += ", its " + std::to_string(report.carried_inputs) + " inputs carried over";
    } else if (!report.inputs_left.empty()) {
      text += ", its inputs left there (" + report.inputs_left + ")";
    }
  }
  if (report.kept_damaged) text += " (damaged, kept for its inputs: see the error above)";
  return text;
}

// EngineLogger routes the engine's background errors to the daemon's log.
void EngineLogger(LogLevel level, std::string_view message) {
  switch (level) {
    case LogLevel::kInfo:
      spdlog::info("{}", message);
      break;
    case LogLevel::kWarning:
      spdlog::warn("{}", message);
      break;
    case LogLevel::kError:
      spdlog::error("{}", message);
      break;
  }
}

// OpenEngine opens the store and the engine in `data_dir`, with the memory limit shared
// out between them (StoreMemoryFor).
absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> OpenEngine(
    const std::string& data_dir, const ServerOptions& options) {
  const uint64_t limit =
      options.memory_limit > 0 ? options.memory_limit : DefaultMemoryLimit();
  const StoreMemory store_memory = StoreMemoryFor(limit);
  return storage::PersistentEngine::Open(
      storage::StoreOptions{.data_dir = data_dir,
                            .block_cache_bytes = store_memory.block_cache_bytes,
                            .write_buffer_bytes = store_memory.write_buffer_bytes},
      EngineOptions{.worker_threads = options.workers,
                    .snapshot_interval = options.snapshot_interval,
                    .settle_delay = options.settle_delay,
                    .logger = &EngineLogger,
                    .gc = options.gc,
                    .memory = MemoryOptions{.limit_bytes = static_cast<size_t>(limit)},
                    .shared = options.shared});
}

}  // namespace

uint64_t DefaultMemoryLimit() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  const uint64_t physical = pages > 0 && page_size > 0
                                ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size)
                                : uint64_t{4} << 30;
  return std::min(physical / 4, uint64_t{8} << 30);
}

StoreMemory StoreMemoryFor(uint64_t memory_limit) {
  const uint64_t share = memory_limit / 16;
  return StoreMemory{
      .block_cache_bytes = static_cast<size_t>(std::clamp(share, uint64_t{4} << 20, uint64_t{1} << 30)),
      .write_buffer_bytes =
          static_cast<size_t>(std::clamp(share, uint64_t{4} << 20, uint64_t{256} << 20))};
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  // gRPC cleans up after itself when its last user lets go, and that waits for its poller
  // threads, one of which sleeps up to 10 s after any answer the socket could not take at
  // once: a stop right after a large answer took 10 s longer (and a --stop-timeout under
  // that cut it short). The process keeps the library until it exits instead, and leaves
  // those threads to the exit; once the server is stopped they have nothing left to do.
  static const bool kept_until_exit = (grpc_init(), true);
  (void)kept_until_exit;
  const fs::path data_dir = DataDirPath(options.data_dir);
  if (options.listen.empty()) {
    options.listen.push_back("unix:" + (data_dir / "turbined.sock").string());
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key file");
  }
  if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "a client CA (mutual TLS) needs TLS: give the daemon's certificate and key too");
  }
  if (absl::Status workers = CheckWorkers(options.workers); !workers.ok()) return workers;
  // A token no client can send would lock every client out.
  if (const std::string problem = TokenProblem(options.auth_token); !problem.empty()) {
    return absl::InvalidArgumentError("auth_token " + problem);
  }
  absl::StatusOr<std::vector<ListenAddress>> addresses = CheckListenAddresses(options);
  if (!addresses.ok()) return addresses.status();
  std::string metrics_address;
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::string> checked =
        CheckMetricsAddress(options.metrics_listen, options.insecure);
    if (!checked.ok()) return checked.status();
    metrics_address = *checked;
  }
  std::string http_address;
  if (!options.http_listen.empty()) {
    absl::StatusOr<std::string> checked =
        CheckStatusPageAddress(options.http_listen, options.insecure);
    if (!checked.ok()) return checked.status();
    http_address = *checked;
  }

  // Before the data dir is touched: below the least, the store or gRPC failed somewhere in
  // the start (RocksDB's open, an eventfd gRPC could not make, which aborted the process).
  const OpenFileLimit open_files = RaiseOpenFileLimit();
  if (open_files.known && open_files.now < kLeastOpenFiles) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the open file limit is ", open_files.now,
        " (ulimit -n; LimitNOFILE= under systemd): turbined needs at least ", kLeastOpenFiles));
  }

  // The TLS files are checked before the data dir is touched: a start refused for a key
  // that is not the certificate's opens no database.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tcp_credentials =
      TcpCredentials(options);
  if (!tcp_credentials.ok()) return tcp_credentials.status();
  if (!options.tls_cert_file.empty() &&
      std::none_of(addresses->begin(), addresses->end(),
                   [](const ListenAddress& address) { return !address.unix_socket; })) {
    spdlog::warn(
        "TLS is set up but no --listen address is TCP: a unix socket is served without TLS, "
        "so the certificate {} is not used",
        options.tls_cert_file);
  }

  // A size without a unit is bytes: `--memory-limit 512` meant as megabytes gives a daemon
  // that evicts every result it may, and said so only 2 s later, in other words.
  if (options.memory_limit > 0 && options.memory_limit < kLeastUsefulMemoryLimit) {
    spdlog::warn(
        "--memory-limit {} bytes is below what turbined needs idle (about 33 MB): every result "
        "that may leave memory will, and the daemon stays over the limit (a size without K, M "
        "or G is bytes: 512M is 512 MiB)",
        options.memory_limit);
  }
  if (absl::Status made = PrepareDataDir(options.data_dir, data_dir); !made.ok()) return made;
  auto state = std::make_unique<State>();
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(data_dir);
  if (!lock.ok()) return lock.status();
  state->lock = std::move(*lock);
  TellOwnDirectory(data_dir.string());  // before the check at start subscribes anything
  absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> persistent =
      OpenEngine(data_dir.string(), options);
  if (!persistent.ok()) return persistent.status();
  state->persistent = std::move(*persistent);
  state->report = StoreReport(state->persistent->report());
  if (!options.trace_file.empty()) {
    absl::StatusOr<std::unique_ptr<TraceFile>> trace_file =
        TraceFile::Start(state->persistent->engine(), options.trace_file);
    if (!trace_file.ok()) return trace_file.status();
    state->trace_file = std::move(*trace_file);
  }

  State* raw_state = state.get();
  state->service = std::make_unique<TurbineService>(
      state->persistent->engine(), state->persistent->store(), options.auth_token,
      [raw_state] {
        std::lock_guard lock(raw_state->mu);
        raw_state->shutdown_requested = true;
        raw_state->changed.notify_all();
      },
      ReplyLimits{.stream_bytes = options.stream_reply_buffer_bytes,
                  .daemon_bytes = options.reply_buffer_bytes,
                  .message_bytes = options.max_message_bytes},
      options.gc);
  if (!metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start(
        metrics_address, state->persistent->engine(), *state->service, state->persistent->store());
    if (!metrics.ok()) return metrics.status();
    state->metrics = std::move(*metrics);
  }
  if (!http_address.empty()) {
    absl::StatusOr<std::unique_ptr<StatusPage>> page =
        StatusPage::Start(http_address, *state->service, options.auth_token);
    if (!page.ok()) return page.status();
    state->status_page = std::move(*page);
  }
  absl::Status serving =
      state->StartGrpc(options, *addresses, open_files, *std::move(tcp_credentials));
  if (!serving.ok()) return serving;
  state->options = std::move(options);
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

absl::Status Server::State::StartGrpc(ServerOptions& options,
                                      const std::vector<ListenAddress>& listen,
                                      const OpenFileLimit& open_files,
                                      std::shared_ptr<grpc::ServerCredentials> tcp_credentials) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // What a reply may carry is the service's to enforce (a result too large is that call's
  // error; a graph or a trace is cut to fit). gRPC's own cap, which fails the whole RPC, is
  // no lower than 64 KiB: under a limit of 1 KiB, `turbine functions` (1.6 KB) failed.
  builder.SetMaxSendMessageSize(std::max(options.max_message_bytes, 64 << 10));
  builder.RegisterService(service.get());
  ConfigureConnections(options, open_files, builder);
  // turbined listens and accepts itself and hands connections to gRPC (listeners.h says why).
  std::vector<ConnectionAcceptor::Port> ports;
  for (const ListenAddress& address : listen) {
    // Sockets are created owner-only: the umask applies while they are bound.
    const mode_t old_umask = ::umask(0077);
    absl::StatusOr<BoundAddress> bound = Listen(address);
    ::umask(old_umask);
    if (!bound.ok()) return bound.status();
    if (address.unix_socket) {
      ::chmod(address.path.c_str(), 0600);
      struct stat st {};
      if (::lstat(address.path.c_str(), &st) == 0) {
        socket_paths.push_back({address.path, st.st_dev, st.st_ino, st.st_ctim});
      }
    }
    addresses.push_back(bound->address);
    ports.push_back({.bound = std::move(*bound),
                     .handoff = builder.experimental().AddExternalConnectionAcceptor(
                         grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
                         address.unix_socket ? grpc::InsecureServerCredentials() : tcp_credentials),
                     .tcp = !address.unix_socket});
  }
  grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr) return absl::UnavailableError("cannot start the gRPC server");
  absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> started =
      ConnectionAcceptor::Start(std::move(ports), options.max_connections);
  if (!started.ok()) return started.status();
  acceptor = std::move(*started);
  // Health answers for the whole server ("") and for the service by name; Stop turns both.
  grpc_server->GetHealthCheckService()->SetServingStatus(
      std::string(v1::Turbine::service_full_name()), true);
  grpc_server->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

Server::Server(std::unique_ptr<State> state) : state_(std::move(state)) {}

Server::~Server() {
  Shutdown();
  Wait();
}

const std::vector<std::string>& Server::addresses() const { return state_->addresses; }
std::string Server::metrics_address() const {
  return state_->metrics == nullptr ? "" : state_->metrics->address();
}
std::string Server::http_address() const {
  return state_->status_page == nullptr ? "" : state_->status_page->address();
}
Engine& Server::engine() { return state_->persistent->engine(); }
std::string Server::store_report() const { return state_->report; }

void Server::Shutdown() {
  std::lock_guard lock(state_->mu);
  state_->shutdown_requested = true;
  state_->changed.notify_all();
}

void Server::WaitForShutdownRequest() {
  std::unique_lock lock(state_->mu);
  state_->changed.wait(lock, [this] { return state_->shutdown_requested; });
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
  // What is left is told the daemon stops and its reads are cancelled. If anything was
  // left, a shared cache lookup it may wait on (a Redis that stopped answering) ends now
  // too, not at its timeout. Not otherwise: the traces of the grace period still publish.
  const bool cut = service->CutCallsShort();
  if (cut && options.shared.tier != nullptr) options.shared.tier->Stop();
  // A client not reading its watch is given a second, no more.
  service->WaitForWatchesEnded(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  acceptor.reset();
  grpc_server->Shutdown(std::chrono::system_clock::now());
  grpc_server->Wait();
  grpc_server.reset();
  // The cut calls' answers still reach the service when their reads end (at once, unless
  // every worker runs a body that does not look at cancellation): it stays until they have.
  service->WaitForCutCalls();
  metrics.reset();  // before the service it reads; it served until the calls were done
  status_page.reset();
  service.reset();  // finishes SetInputs / Flush jobs already accepted
  // A failure is not logged here: the engine flushes again as it closes (the disk may have
  // room by then) and logs the failure if that one fails too, so the log says it once.
  (void)persistent->engine().Flush();
  if (trace_file != nullptr) trace_file->Finish();  // the final snapshot is in it
  for (const SocketPath& socket : socket_paths) {
    struct stat st {};
    if (::lstat(socket.path.c_str(), &st) == 0 && st.st_dev == socket.device &&
        st.st_ino == socket.inode && st.st_ctim.tv_sec == socket.changed.tv_sec &&
        st.st_ctim.tv_nsec == socket.changed.tv_nsec) {
      ::unlink(socket.path.c_str());
    }
  }
}

}  // namespace turbine::server
