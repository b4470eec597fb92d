// status_page.h — the daemon's status page: a small web page served over HTTP
// (turbined --http-listen), with JSON endpoints the page fetches from the same server.
//
//   GET /                 the page (HTML; /status.js and /status.css beside it: no CDN,
//                         nothing from elsewhere, so it works offline)
//   GET /api/stats        the Stats RPC's answer as JSON (what `turbine stats --json` reads)
//   GET /api/graph?call=FN%20ARG...[&depth=N]
//                         the call's dependency cone as an SVG picture (Graphviz, as
//                         `turbine graph --format svg`); the call is typed in the CLI's syntax
//   GET /api/executions   recent executions and why they ran: a placeholder until the engine
//                         records them ({"available": false, "executions": []})
//
// Security is the gRPC listener's: loopback only unless --insecure (CheckHttpAddress), and
// when the daemon has a token, every request must carry it: "Authorization: Bearer TOKEN",
// or the cookie the page sets after it was opened once as /?token=TOKEN (which redirects
// to the same URL without the token). Requests are bounded (16 KiB of request line and
// headers, no bodies: only GET and HEAD), and anything malformed is a 4xx.
//
// Thread-safety: requests run on civetweb's threads (a few), concurrently with calls; what
// they read is the service's, which is thread-safe. The service must outlive the page.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>

#include "service.h"

struct mg_context;

namespace turbine::server {

// CheckStatusPageAddress validates --http-listen (CheckHttpAddress with the page's words).
absl::StatusOr<std::string> CheckStatusPageAddress(const std::string& address, bool insecure);

class StatusPage {
 public:
  // Start serves the page on `address` (from CheckStatusPageAddress). `auth_token` empty:
  // no token needed. kUnavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<StatusPage>> Start(const std::string& address,
                                                           TurbineService& service,
                                                           std::string auth_token);
  // Stops serving; requests in progress finish first.
  ~StatusPage();
  StatusPage(const StatusPage&) = delete;
  StatusPage& operator=(const StatusPage&) = delete;

  // The address as bound: a port 0 is replaced by the port chosen.
  const std::string& address() const { return address_; }

  class Handler;  // status_page.cc

 private:
  StatusPage() = default;

  std::unique_ptr<Handler> handler_;  // outlives the server that calls it
  mg_context* server_ = nullptr;
  std::string address_;
};

// The page's files (status_page_assets.cc).
extern const char kStatusPageHtml[];
extern const char kStatusPageScript[];
extern const char kStatusPageStyle[];

}  // namespace turbine::server
