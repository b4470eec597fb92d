// address.h — listen addresses: parsing and the loopback check, for gRPC and the HTTP
// listeners (metrics, the status page) alike.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <string>

namespace turbine::server {

// ListenAddress is "unix:PATH" or "HOST:PORT" ("[V6]:PORT"), parsed.
struct ListenAddress {
  std::string text;  // as given
  bool unix_socket = false;
  std::string path;  // unix: the socket file
  std::string host;  // TCP: without brackets
  int port = 0;      // TCP: 0..65535 (0 picks a free one)
};

// ParseListenAddress checks the form and the port range; errors (kInvalidArgument) say
// what is wrong, for the caller to prefix with what the address was for.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address);

// IsLoopback tells whether an address stays on this machine: unix sockets, localhost,
// 127.0.0.0/8, ::1.
bool IsLoopback(const ListenAddress& address);

// HttpAddressRules describe one of turbined's HTTP listeners (metrics, the status page),
// for CheckHttpAddress's messages.
struct HttpAddressRules {
  const char* what;     // "metrics address": errors start "<what> '<address>': "
  const char* example;  // "127.0.0.1:9464"
  const char* refusal;  // why an address off this machine needs --insecure
};

// CheckHttpAddress validates the address of an HTTP listener and returns it as civetweb
// binds it: IPV4:PORT (localhost becomes 127.0.0.1; port 0 picks a free one); civetweb as
// Debian builds it has no IPv6. The listeners have no TLS, so an address off this machine
// is refused (kInvalidArgument) unless `insecure` says the network is trusted.
absl::StatusOr<std::string> CheckHttpAddress(const HttpAddressRules& rules,
                                             const std::string& address, bool insecure);

// StopHttpServer runs `stop`, which stops a civetweb server bound to `address` (as
// CheckHttpAddress returned it, with the port bound). civetweb's accept loop notices that
// it should stop only when its poll ends, every 2 s, or when a connection comes in: this
// knocks until `stop` returns, so that stopping takes milliseconds.
void StopHttpServer(const std::string& address, const std::function<void()>& stop);

}  // namespace turbine::server
