// listeners.h — the daemon's listening sockets and the thread that accepts on them.
//
// turbined accepts connections itself and hands each one to gRPC (an
// ExternalConnectionAcceptor per address, which runs gRPC's handshake, TLS included), instead
// of letting gRPC listen. gRPC 1.51's own listener (iomgr's tcp_server_posix.cc, on_read)
// treats every accept4 error but EAGAIN and EINTR as the end of that port: it logs "Failed
// accept4: Too many open files" once and never asks to hear about the socket again, so after
// one EMFILE the port accepts nothing, ever, while the health service still says SERVING.
//
// Here a full fd table pauses accepting: pending connections wait in the kernel's backlog
// and accepting resumes, after a short back-off, as descriptors come free. And the number of
// open connections is bounded (ServerOptions::max_connections), well below the fd limit, so
// that it seldom comes to that: at the bound, new connections wait in the backlog until one
// closes.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/server_builder.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "address.h"
#include "turbine/server/server.h"

namespace turbine::server {

// UniqueFd owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// BoundAddress is one --listen address's sockets: "localhost:0" may be 127.0.0.1 and ::1.
struct BoundAddress {
  std::string address;  // as bound: a port 0 is replaced by the port chosen
  std::vector<UniqueFd> sockets;
};

// Listen creates, binds and listens on `address` (parsed by ParseListenAddress): a unix
// socket (a socket left at its path that nobody accepts on is removed first; a file that
// is not a socket is kInvalidArgument, a socket another process accepts on kUnavailable)
// or HOST:PORT / [V6]:PORT (every address HOST resolves to, all on one port).
// kInvalidArgument for a host that does not resolve, kUnavailable when it cannot be bound.
absl::StatusOr<BoundAddress> Listen(const ListenAddress& address);

// ConfigureConnections logs the open-file limit `files` (RaiseOpenFileLimit's), sets
// options.max_connections when it is 0 (DefaultMaxConnections) and lowers it to that when
// it is more (logged: connections beyond it would take the descriptors the store needs to
// write, and a store that fails to open its log stops writing until a restart), and gives
// gRPC the channel
// arguments that close idle and dead connections: options.max_connection_idle; keepalive
// pings every kKeepaliveTime, a peer that does not answer one in kKeepaliveTimeout is gone; a
// handshake (TLS) must finish in kHandshakeTimeout.
inline constexpr std::chrono::milliseconds kKeepaliveTime{60'000};
inline constexpr std::chrono::milliseconds kKeepaliveTimeout{20'000};
inline constexpr std::chrono::milliseconds kHandshakeTimeout{20'000};
struct OpenFileLimit;
void ConfigureConnections(ServerOptions& options, const OpenFileLimit& files,
                          grpc::ServerBuilder& builder);

// RaiseOpenFileLimit raises the soft limit on open files to the hard limit and returns the
// limit in force (logged by the caller). Connections, the store's files and the files that
// functions read all count against it.
struct OpenFileLimit {
  bool known = false;  // getrlimit answered
  uint64_t before = 0;
  uint64_t now = 0;
};
OpenFileLimit RaiseOpenFileLimit();

// kLeastOpenFiles is the open-file limit the daemon starts with at least: the store keeps
// about twenty files open, gRPC a few, and below that a start failed at random places (an
// eventfd gRPC could not make aborted the process).
inline constexpr uint64_t kLeastOpenFiles = 64;

// DefaultMaxConnections is half the open-file limit: the other half stays for the store,
// the files functions read and gRPC's own descriptors.
int DefaultMaxConnections(uint64_t open_file_limit);

// ConnectionAcceptor runs the accept loop for every bound address and hands each accepted
// connection to gRPC. It counts connections that are still open by remembering each one's
// (fd, inode): gRPC closes the descriptor when the connection ends, and an fd that is closed
// or now names another file means that connection is gone. That check runs only when the
// count reaches the bound, so accepting costs one fstat more than before. TCP connections
// may take all but an eighth of the bound: a flood of them, which anyone who reaches the
// port can send, token or not, leaves the owner-only unix sockets room.
class ConnectionAcceptor {
 public:
  struct Port {
    BoundAddress bound;
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> handoff;
    bool tcp = false;
  };
  // Start begins accepting; the gRPC server the hand-offs belong to must be started.
  static absl::StatusOr<std::unique_ptr<ConnectionAcceptor>> Start(std::vector<Port> ports,
                                                                   int max_connections);
  // Stops accepting and closes the listening sockets (connections already handed to gRPC
  // are gRPC's).
  ~ConnectionAcceptor();
  ConnectionAcceptor(const ConnectionAcceptor&) = delete;
  ConnectionAcceptor& operator=(const ConnectionAcceptor&) = delete;

 private:
  struct Connection {
    int fd;
    dev_t device;
    ino_t inode;
    bool tcp;
  };
  ConnectionAcceptor(std::vector<Port> ports, int max_connections, UniqueFd wake);
  void Run();
  // AcceptFrom accepts what `port` has pending, up to the bound; false when the process is
  // out of descriptors (or memory) and accepting must wait.
  bool AcceptFrom(Port& port, int listen_fd);
  // AtLimit: `port` may accept no more connections now.
  bool AtLimit(const Port& port);
  bool Full(const Port& port) const;
  void ForgetClosed();

  std::vector<Port> ports_;
  const int max_connections_;
  int max_tcp_connections_;
  UniqueFd wake_;  // an eventfd: written to stop the loop
  // Touched by the accept thread only.
  std::vector<Connection> connections_;
  int tcp_connections_ = 0;  // of connections_
  bool said_out_of_fds_ = false;
  std::thread thread_;
};

}  // namespace turbine::server
