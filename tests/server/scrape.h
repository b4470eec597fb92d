// scrape.h — reading a /metrics page in tests the way Prometheus does: a plain HTTP GET
// over a TCP socket the test opens itself, and one sample looked up by its series.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <sstream>
#include <string>

namespace turbine::testing {

struct HttpReply {
  int status = 0;  // 0: no HTTP answer (connection refused, garbage)
  std::string body;
};

// HttpGet fetches http://<address><path>; `address` is "IPV4:PORT".
inline HttpReply HttpGet(const std::string& address, const std::string& path = "/metrics") {
  HttpReply reply;
  const size_t colon = address.rfind(':');
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &peer.sin_addr) != 1) return reply;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{.tv_sec = 30, .tv_usec = 0};  // a hung server fails the test, not the suite
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0) {
    ::close(fd);
    return reply;
  }
  // HTTP/1.0 without keep-alive: the server closes the connection after the reply.
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return reply;
  }
  std::string response;
  char buffer[8192];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0)
    response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  // "HTTP/1.1 200 OK\r\n...headers...\r\n\r\nbody"
  const size_t space = response.find(' ');
  const size_t headers_end = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/") || space == std::string::npos ||
      headers_end == std::string::npos) {
    return reply;
  }
  reply.status = std::atoi(response.c_str() + space + 1);
  reply.body = response.substr(headers_end + 4);
  return reply;
}

// Sample finds the value of one series on a metrics page, e.g.
// Sample(page, R"(turbine_calls_total{source="memory"})"); nullopt when it is not there.
inline std::optional<double> Sample(const std::string& page, const std::string& series) {
  std::istringstream lines(page);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

}  // namespace turbine::testing
