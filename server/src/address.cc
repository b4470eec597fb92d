// address.cc — parsing listen addresses (address.h).
#include "address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>

namespace turbine::server {
namespace {

constexpr std::string_view kUnixPrefix = "unix:";

absl::Status Bad(const std::string&, const std::string& why) {
  return absl::InvalidArgumentError(why);
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address) {
  ListenAddress parsed;
  parsed.text = address;
  if (address.starts_with(kUnixPrefix)) {
    parsed.unix_socket = true;
    parsed.path = address.substr(kUnixPrefix.size());
    if (parsed.path.empty()) return Bad(address, "the socket path is empty");
    if (parsed.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Bad(address, "the socket path is too long for a unix socket (" +
                              std::to_string(parsed.path.size()) +
                              " bytes, at most 107): use a shorter --data-dir or --listen");
    }
    return parsed;
  }
  size_t colon = address.rfind(':');
  if (address.starts_with("[")) {
    const size_t end = address.find(']');
    if (end == std::string::npos || end + 1 != colon) {
      return Bad(address, "expected [V6]:PORT, e.g. [::1]:7878");
    }
    parsed.host = address.substr(1, end - 1);
  } else if (colon == std::string::npos) {
    return Bad(address, "expected unix:PATH or HOST:PORT, e.g. 127.0.0.1:7878");
  } else {
    parsed.host = address.substr(0, colon);
  }
  const std::string_view port(address.data() + colon + 1, address.size() - colon - 1);
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), parsed.port);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || parsed.port < 0 ||
      parsed.port > 65535) {
    return Bad(address, "the port must be a number from 0 to 65535 (0 picks a free one)");
  }
  return parsed;
}

bool IsLoopback(const ListenAddress& address) {
  if (address.unix_socket) return true;
  if (address.host == "localhost" || address.host == "::1") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, address.host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace turbine::server
