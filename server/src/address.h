// address.h — listen addresses: parsing and the loopback check, for gRPC and metrics alike.
#pragma once

#include <absl/status/statusor.h>

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

}  // namespace turbine::server
