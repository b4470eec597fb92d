// listeners.cc — see listeners.h.
#include "listeners.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

namespace turbine::server {
namespace {

// How long accepting pauses when the process is out of descriptors, and how often the
// count of open connections is re-checked while it is at the bound.
constexpr int kRetryMillis = 100;

std::string Errno(int error) { return std::strerror(error); }

// MakeWayForSocket clears `path` for a new socket: a socket nobody accepts on (left by a
// daemon that died) is removed. Anything else is refused, not removed: a file that is not a
// socket is someone's data (a typo in --listen), and a socket that accepts belongs to a
// running process, which would silently lose its clients to this one.
absl::Status MakeWayForSocket(const ListenAddress& address, const sockaddr_un& addr) {
  const std::string& path = address.path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return absl::OkStatus();  // bind reports the rest
  if (!S_ISSOCK(st.st_mode)) {
    return absl::InvalidArgumentError("cannot listen on " + address.text + ": " + path +
                                      " exists and is not a socket; it is left alone (remove "
                                      "it, or choose another path)");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return absl::UnavailableError("cannot create a unix socket: " + Errno(errno));
  // Non-blocking: a listener whose backlog is full answers EAGAIN rather than making this
  // wait, and is as alive as one that accepts.
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0 ||
      errno == EAGAIN) {
    return absl::UnavailableError("cannot listen on " + address.text +
                                  ": another process accepts connections on it (a turbined "
                                  "still running?); stop it, or choose another path");
  }
  if (errno != ECONNREFUSED) {
    return absl::UnavailableError("cannot listen on " + address.text + ": " + path +
                                  " is a socket that cannot be probed (" + Errno(errno) +
                                  "); it is left alone");
  }
  ::unlink(path.c_str());  // nobody listens: a dead daemon's socket
  return absl::OkStatus();
}

absl::StatusOr<BoundAddress> ListenUnix(const ListenAddress& address) {
  const std::string& path = address.path;  // checked by ParseListenAddress
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return absl::UnavailableError("cannot create a unix socket: " + Errno(errno));
  if (absl::Status clear = MakeWayForSocket(address, addr); !clear.ok()) return clear;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0) {
    return absl::UnavailableError("cannot listen on " + address.text + ": " + Errno(errno));
  }
  BoundAddress bound;
  bound.address = address.text;
  bound.sockets.push_back(std::move(fd));
  return bound;
}

absl::StatusOr<UniqueFd> ListenTcp(const addrinfo& info, int port, std::string* error) {
  UniqueFd fd(::socket(info.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    *error = Errno(errno);
    return absl::UnavailableError(*error);
  }
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // inherited by accept
  sockaddr_storage addr{};
  std::memcpy(&addr, info.ai_addr, info.ai_addrlen);
  if (info.ai_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    // "::" serves IPv4 too (as gRPC does); a specific v6 address only itself, so that
    // "localhost" can bind 127.0.0.1 and ::1 on the same port.
    const int v6_only = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr) ? 0 : 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof(v6_only));
    v6->sin6_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(static_cast<uint16_t>(port));
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), info.ai_addrlen) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0) {
    *error = Errno(errno);
    return absl::UnavailableError(*error);
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t length = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return 0;
  return addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

absl::StatusOr<BoundAddress> ListenHostPort(const ListenAddress& address) {
  const std::string& host = address.host;
  int port = address.port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int error = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), "0", &hints, &found);
      error != 0) {
    return absl::InvalidArgumentError("cannot resolve '" + host + "' in listen address " +
                                      address.text + ": " + ::gai_strerror(error));
  }
  BoundAddress bound;
  std::string error = "no address";
  for (const addrinfo* info = found; info != nullptr; info = info->ai_next) {
    if (info->ai_family != AF_INET && info->ai_family != AF_INET6) continue;
    absl::StatusOr<UniqueFd> fd = ListenTcp(*info, port, &error);
    if (!fd.ok()) continue;  // as gRPC does: ::1 may be missing where 127.0.0.1 works
    if (port == 0) port = BoundPort(fd->get());  // the other addresses take the same port
    bound.sockets.push_back(std::move(*fd));
  }
  ::freeaddrinfo(found);
  if (bound.sockets.empty()) {
    return absl::UnavailableError("cannot listen on " + address.text + ": " + error);
  }
  bound.address = address.text.substr(0, address.text.rfind(':')) + ":" + std::to_string(port);
  return bound;
}

bool OutOfResources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<BoundAddress> Listen(const ListenAddress& address) {
  return address.unix_socket ? ListenUnix(address) : ListenHostPort(address);
}

void ConfigureConnections(ServerOptions& options, const OpenFileLimit& limit,
                          grpc::ServerBuilder& builder) {
  const int most = DefaultMaxConnections(limit.now);
  if (options.max_connections > most) {
    spdlog::warn(
        "--max-connections {} is more than half the open file limit ({}): lowered to {}, so "
        "that the store keeps the descriptors it needs to write; raise the limit (ulimit -n, "
        "LimitNOFILE=) for more",
        options.max_connections, limit.now, most);
  }
  if (options.max_connections <= 0 || options.max_connections > most) {
    options.max_connections = most;
  }
  if (limit.now != limit.before) {
    spdlog::info("open file limit {} (raised from {}); at most {} connections", limit.now,
                 limit.before, options.max_connections);
  } else {
    spdlog::info("open file limit {}; at most {} connections", limit.now, options.max_connections);
  }
  const auto millis = [](std::chrono::milliseconds duration) {
    return static_cast<int>(std::min<int64_t>(duration.count(), INT32_MAX));
  };
  if (options.max_connection_idle.count() > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               millis(options.max_connection_idle));
  }
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, millis(kKeepaliveTime));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, millis(kKeepaliveTimeout));
  // Without this gRPC stops pinging after two pings with no data in between, and a long
  // quiet Watch to a vanished peer would never be noticed.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, millis(kHandshakeTimeout));
}

OpenFileLimit RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  OpenFileLimit result{.known = true, .before = limit.rlim_cur, .now = limit.rlim_cur};
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) result.now = raised.rlim_cur;
  }
  return result;
}

int DefaultMaxConnections(uint64_t open_file_limit) {
  constexpr uint64_t kCeiling = 1 << 20;
  return static_cast<int>(std::clamp<uint64_t>(open_file_limit / 2, 1, kCeiling));
}

absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> ConnectionAcceptor::Start(
    std::vector<Port> ports, int max_connections) {
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake.get() < 0) return absl::UnavailableError("cannot create an eventfd: " + Errno(errno));
  auto acceptor = std::unique_ptr<ConnectionAcceptor>(
      new ConnectionAcceptor(std::move(ports), max_connections, std::move(wake)));
  acceptor->thread_ = std::thread([raw = acceptor.get()] { raw->Run(); });
  return acceptor;
}

ConnectionAcceptor::ConnectionAcceptor(std::vector<Port> ports, int max_connections, UniqueFd wake)
    : ports_(std::move(ports)),
      max_connections_(max_connections),
      max_tcp_connections_(max_connections),
      wake_(std::move(wake)) {
  const bool has_unix = std::any_of(ports_.begin(), ports_.end(), [](const Port& p) { return !p.tcp; });
  if (has_unix) max_tcp_connections_ = std::max(1, max_connections - std::max(1, max_connections / 8));
}

ConnectionAcceptor::~ConnectionAcceptor() {
  const uint64_t one = 1;
  if (::write(wake_.get(), &one, sizeof(one)) < 0) {
    // An eventfd write fails only when its counter would overflow: it is already woken.
  }
  if (thread_.joinable()) thread_.join();
}

void ConnectionAcceptor::ForgetClosed() {
  std::erase_if(connections_, [this](const Connection& connection) {
    struct stat now {};
    const bool closed = ::fstat(connection.fd, &now) != 0 || now.st_dev != connection.device ||
                        now.st_ino != connection.inode;
    if (closed && connection.tcp) --tcp_connections_;
    return closed;
  });
}

bool ConnectionAcceptor::Full(const Port& port) const {
  return static_cast<int>(connections_.size()) >= max_connections_ ||
         (port.tcp && tcp_connections_ >= max_tcp_connections_);
}

bool ConnectionAcceptor::AtLimit(const Port& port) {
  if (!Full(port)) return false;
  ForgetClosed();
  return Full(port);
}

void ConnectionAcceptor::Run() {
  bool paused = false;  // out of descriptors: listen only for the wake, retry after a pause
  bool said_full = false;   // at the bound when last looked
  bool told_full = false;   // and the log said so, not yet followed by "again"
  std::optional<std::chrono::steady_clock::time_point> last_said_full;
  std::vector<pollfd> polled;                   // the wake eventfd, then the sockets polled
  std::vector<std::pair<Port*, int>> sources;  // of polled[i + 1]
  for (;;) {
    // Only the ports below their bound are polled: one at it stays readable until a
    // connection closes, which nothing signals, so the loop looks again every kRetryMillis.
    polled.assign(1, pollfd{wake_.get(), POLLIN, 0});
    sources.clear();
    bool some_full = false;
    for (Port& port : ports_) {
      if (paused) break;
      if (AtLimit(port)) {
        some_full = true;
        continue;
      }
      for (const UniqueFd& socket : port.bound.sockets) {
        polled.push_back({socket.get(), POLLIN, 0});
        sources.emplace_back(&port, socket.get());
      }
    }
    if (!paused && some_full != said_full) {
      // Once a minute at most: clients coming and going at the bound made it say so, and
      // then that it accepts again, several times a second.
      const auto now = std::chrono::steady_clock::now();
      if (some_full && (!last_said_full || now - *last_said_full >= std::chrono::minutes(1))) {
        spdlog::warn(
            "open connections at the limit: {} (--max-connections {}; over TCP {}, which may "
            "take {}): new ones wait until one closes",
            connections_.size(), max_connections_, tcp_connections_, max_tcp_connections_);
        last_said_full = now;
        told_full = true;
      } else if (!some_full && told_full) {
        spdlog::info("accepting connections again");
        told_full = false;
      }
      said_full = some_full;
    }
    const int ready = ::poll(polled.data(), polled.size(), paused || some_full ? kRetryMillis : -1);
    if (ready < 0 && errno != EINTR) {
      spdlog::error("accepting connections: poll failed: {}", Errno(errno));
      paused = true;  // retried after the pause rather than spinning
      continue;
    }
    if (polled[0].revents != 0) return;  // stopping
    paused = false;
    for (size_t i = 0; i < sources.size() && !paused; ++i) {
      if (ready > 0 && (polled[i + 1].revents & POLLIN) == 0) continue;
      paused = !AcceptFrom(*sources[i].first, sources[i].second);
    }
  }
}

bool ConnectionAcceptor::AcceptFrom(Port& port, int listen_fd) {
  while (!AtLimit(port)) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) break;
      if (OutOfResources(error)) {
        // The connection stays in the backlog; it is accepted once descriptors come free.
        if (!std::exchange(said_out_of_fds_, true)) {
          spdlog::warn("cannot accept a connection: {}; retrying as descriptors come free",
                       Errno(error));
        }
        return false;
      }
      spdlog::error("cannot accept a connection on {}: {}", port.bound.address, Errno(error));
      return false;  // paused, not spinning, on an error we do not expect
    }
    if (std::exchange(said_out_of_fds_, false)) spdlog::info("accepting connections again");
    struct stat identity {};
    ::fstat(fd, &identity);
    connections_.push_back({fd, identity.st_dev, identity.st_ino, port.tcp});
    if (port.tcp) ++tcp_connections_;
    // gRPC owns the descriptor from here: it closes it when the connection ends.
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters connection;
    connection.listener_fd = listen_fd;
    connection.fd = fd;
    port.handoff->HandleNewConnection(&connection);
  }
  return true;
}

}  // namespace turbine::server
