// server.h — a Turbine daemon in a library: the store, the engine and the gRPC service.
//
//   turbine::server::ServerOptions options{.data_dir = "/var/lib/turbine"};
//   auto server = turbine::server::Server::Start(options);   // serving when it returns
//   if (!server.ok()) { ... }
//   (*server)->Wait();   // until Shutdown() (a signal handler thread, or the Shutdown RPC)
//
// It serves every function exported in the process (export.h). turbined is this plus
// command-line flags and signal handling; a user's own daemon links it the same way.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "turbine/engine.h"

namespace turbine::server {

struct ServerOptions {
  // Holds the database (db/), the lock file and, by default, the socket.
  std::string data_dir = "./.turbine";
  // gRPC addresses: "unix:/path" or "host:port" (port 0 picks a free one). Empty: only
  // unix:<data_dir>/turbined.sock.
  std::vector<std::string> listen = {};
  // Serve TCP on a non-loopback address without TLS (everyone on the network can call).
  bool insecure = false;
  // TLS for TCP listeners: PEM files. Both or neither.
  std::string tls_cert_file = {};
  std::string tls_key_file = {};
  // Mutual TLS: when set (a PEM file of CA certificates), a TCP client must present a
  // certificate signed by one of them, or its handshake fails. Needs tls_cert_file. Unix
  // sockets are unaffected: their file mode decides who may connect.
  std::string tls_client_ca_file = {};
  // When not empty, every RPC must carry "authorization: Bearer <auth_token>": one line of
  // printable ASCII (Start refuses any other byte: no client could send it).
  std::string auth_token = {};
  int workers = 0;  // engine worker threads; 0: one per core
  std::chrono::milliseconds snapshot_interval{1000};
  // Idle this long, the store flushes its memtables (EngineOptions::settle_delay).
  std::chrono::milliseconds settle_delay{30000};
  // Garbage collection of the store: retention, disk limit, how often (turbine/gc.h).
  GcOptions gc = {};
  // The daemon's heap stays under this many bytes: RocksDB's block cache and memtables are
  // sized from it, and over it the values of large results leave memory for the store
  // (turbine/engine.h, MemoryOptions). 0: DefaultMemoryLimit().
  uint64_t memory_limit = 0;
  int max_message_bytes = 16 << 20;  // larger requests fail with RESOURCE_EXHAUSTED
  // On shutdown, in-flight calls get this long to finish before they are cancelled.
  std::chrono::milliseconds shutdown_grace{5000};
  // When not empty, Prometheus metrics are served over HTTP at http://<this>/metrics:
  // "IPV4:PORT" or "localhost:PORT" (port 0 picks a free one). Off this machine only with
  // `insecure` (metrics have no TLS and no token).
  std::string metrics_listen = {};
  // When not empty, the status page is served over HTTP at http://<this>/ (stats, top
  // functions, dependency graphs): "IPV4:PORT" or "localhost:PORT" (port 0 picks a free
  // one). Off this machine only with `insecure` (no TLS); it asks for auth_token too.
  std::string http_listen = {};
  // Trace everything the engine does from start to shutdown into this file (Chrome Trace
  // Event format, a JSON array; see README). Empty: off. The Trace RPC is then refused.
  std::string trace_file = {};
  // Client connections open at once; at the limit, new ones wait in the listen backlog
  // until one closes. 0: half the open-file limit (whose soft value Start raises to the hard
  // one).
  int max_connections = 0;
  // A connection with no call in flight for this long is closed (the client reconnects
  // when it calls again). 0: never.
  std::chrono::milliseconds max_connection_idle{300'000};
  // CallStream flow control: a stream stops reading requests while replies its client has
  // not read reach stream_reply_buffer_bytes, or (when it has any queued) while those of
  // all streams reach reply_buffer_bytes; it reads again as its client catches up.
  int64_t stream_reply_buffer_bytes = 16 << 20;
  int64_t reply_buffer_bytes = 256 << 20;
  // The shared cache tier (turbine/shared_tier.h); turbined fills it from --shared-cache.
  SharedTierOptions shared = {};
};

// DefaultMemoryLimit is a quarter of the machine's physical memory, at most 8 GiB.
uint64_t DefaultMemoryLimit();

// StoreMemory is how a memory limit is shared out to the store: its block cache gets a
// sixteenth (4 MiB to 1 GiB), its memtables a sixteenth (4 MiB to 256 MiB); the engine's
// tasks and values have the rest.
struct StoreMemory {
  size_t block_cache_bytes;
  size_t write_buffer_bytes;
};
StoreMemory StoreMemoryFor(uint64_t memory_limit);

class Server {
 public:
  // Start opens the store (moving a damaged one aside), starts the engine and the gRPC
  // server, and reports SERVING on the health service. Errors: kFailedPrecondition when
  // another daemon serves the data dir, kInvalidArgument for a bad address or option,
  // kPermissionDenied / kUnavailable when the directory or an address cannot be used.
  // The first call keeps gRPC's library initialized until the process exits (server.cc
  // says why: a stop must not wait for gRPC's own clean-up).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  // Stops serving (if not yet), then flushes the cache to disk.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Addresses as bound: a TCP port 0 is replaced by the port chosen.
  const std::vector<std::string>& addresses() const;
  // The metrics address as bound ("127.0.0.1:PORT"); empty when metrics are off.
  std::string metrics_address() const;
  // The status page's address as bound; empty when the page is off.
  std::string http_address() const;
  // Shutdown asks the server to stop; it returns at once and is safe from any thread,
  // including a signal-handling thread and an RPC handler.
  void Shutdown();
  // WaitForShutdownRequest returns once a shutdown was asked for (Shutdown, or the Shutdown
  // RPC), before the server stops.
  void WaitForShutdownRequest();
  // Wait returns once a shutdown was asked for and the server stopped: no longer
  // accepting, in-flight calls finished (or cancelled after the grace period), the cache
  // flushed.
  void Wait();

  Engine& engine();
  // What opening the store found (created, moved aside and why), for the log.
  std::string store_report() const;

 private:
  struct State;
  explicit Server(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace turbine::server
