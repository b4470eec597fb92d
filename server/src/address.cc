// address.cc — listen addresses: parsing, checking, and stopping HTTP listeners (address.h).
#include "address.h"

#include <absl/strings/match.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <thread>

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
  // A host name is read without regard to case: LOCALHOST is localhost.
  if (absl::EqualsIgnoreCase(address.host, "localhost") || address.host == "::1") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, address.host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

absl::StatusOr<std::string> CheckHttpAddress(const HttpAddressRules& rules,
                                             const std::string& address, bool insecure) {
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(std::string(rules.what) + " '" + address + "': " + why);
  };
  if (address.starts_with("unix:") || address.find(':') == std::string::npos) {
    return bad(std::string("expected HOST:PORT, e.g. ") + rules.example);
  }
  if (address.starts_with("[")) {
    return bad(std::string("IPv6 is not supported here (the HTTP server has no IPv6); use an ") +
               "IPv4 address such as " + rules.example);
  }
  absl::StatusOr<ListenAddress> parsed = ParseListenAddress(address);
  if (!parsed.ok()) return bad(std::string(parsed.status().message()));
  std::string host = parsed->host == "localhost" ? "127.0.0.1" : parsed->host;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) != 1) {
    return bad("the host must be an IPv4 address or localhost");
  }
  if (!IsLoopback(*parsed) && !insecure) {
    return bad(std::string(rules.refusal) +
               ". Use a loopback address, or --insecure if the network is trusted");
  }
  return host + ":" + std::to_string(parsed->port);
}

void StopHttpServer(const std::string& address, const std::function<void()>& stop) {
  std::atomic<bool> stopped{false};
  std::thread knocker([&address, &stopped] {
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    const size_t colon = address.rfind(':');
    peer.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    const std::string host = address.substr(0, colon);
    ::inet_pton(AF_INET, host == "0.0.0.0" ? "127.0.0.1" : host.c_str(), &peer.sin_addr);
    while (!stopped.load()) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof(peer));
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  stop();
  stopped.store(true);
  knocker.join();
}

}  // namespace turbine::server
