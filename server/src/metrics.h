// metrics.h — Prometheus metrics of a Server, served over HTTP at /metrics.
//
// Nothing is counted for the metrics' sake: a scrape reads the engine's Stats(), the
// service's counters and the store's usage at that moment and formats them, so a call
// costs the same with metrics on or off. The names and what they mean are listed in
// README.md ("Operations").
//
// Thread-safety: scrapes run on the HTTP server's own threads, concurrently with calls;
// everything they read is atomic or locked by its owner. The engine, service and store
// must outlive the Metrics object (destroying it waits for a scrape in progress).
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>

#include "service.h"
#include "turbine/engine.h"
#include "turbine/storage/store.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace turbine::server {

// CheckMetricsAddress validates a --metrics-listen address and returns it as the HTTP
// server binds it. It must be IPV4:PORT or localhost:PORT (port 0 picks a free one); the
// HTTP server Debian ships has no IPv6. Metrics have no TLS and no token, so an address
// off this machine is refused unless `insecure` says the network is trusted.
absl::StatusOr<std::string> CheckMetricsAddress(const std::string& address, bool insecure);

class Metrics {
 public:
  // Start serves http://<address>/metrics. REQUIRES: `address` came from
  // CheckMetricsAddress. kUnavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& address,
                                                        const Engine& engine,
                                                        const TurbineService& service,
                                                        const storage::Store& store);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The address as bound: a port 0 is replaced by the port chosen.
  const std::string& address() const { return address_; }

 private:
  class Collector;
  Metrics() = default;

  // The collector is declared first so that it outlives the HTTP server that calls it.
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace turbine::server
