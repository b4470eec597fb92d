// The status page (turbined --http-listen), tested against a real daemon: in a real
// headless browser (Debian's chromium), which runs the page's script, fetches the stats
// and draws a graph; and over raw sockets for the token, bad addresses and bad requests.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../server/requests.h"
#include "../storage/temp_dir.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine {
namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::Int;
using turbine::testing::Request;
using turbine::testing::TempDir;

constexpr int kExitBadConfig = 2;
constexpr char kToken[] = "page-secret-7";

// PageAddress is the "IPV4:PORT" of "turbined status page on http://IPV4:PORT/", or "".
std::string PageAddress(const std::string& log) {
  std::smatch match;
  static const std::regex line("turbined status page on http://([0-9.]+:[0-9]+)/");
  return std::regex_search(log, match, line) ? match[1].str() : "";
}

// Connect opens a TCP connection to `address` ("IPV4:PORT") and sends nothing; -1 if it
// cannot connect.
int Connect(const std::string& address) {
  const size_t colon = address.rfind(':');
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &peer.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Exchange sends `request` as is to `address` and returns everything the server answers
// until it closes the connection ("" when it cannot connect).
std::string Exchange(const std::string& address, const std::string& request) {
  const int fd = Connect(address);
  if (fd < 0) return "";
  timeval timeout{.tv_sec = 30, .tv_usec = 0};  // a hung server fails the test, not the suite
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early on a request it refuses
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[8192];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) {
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

// StatusOf is the status code of an HTTP response ("HTTP/1.1 401 ..."), 0 if none.
int StatusOf(const std::string& response) {
  if (!response.starts_with("HTTP/1.")) return 0;
  return std::atoi(response.c_str() + response.find(' ') + 1);
}

std::string Get(const std::string& address, const std::string& path,
                const std::string& headers = "") {
  return Exchange(address, "GET " + path + " HTTP/1.1\r\nHost: " + address +
                               "\r\nConnection: close\r\n" + headers + "\r\n");
}

std::unique_ptr<v1::Turbine::Stub> Stub(const std::string& address) {
  return v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

void WithToken(grpc::ClientContext& context, const std::string& token) {
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
}

// Chromium is the browser binary, or "" when this machine has none.
std::string Chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/snap/bin/"}) {
      const std::string path = std::string(dir) + name;
      if (::access(path.c_str(), X_OK) == 0) return path;
    }
  }
  return "";
}

// DumpDom loads `url` in headless chromium and returns the DOM once the page is idle:
// --virtual-time-budget lets the page's script run and its fetches finish (virtual time
// waits for the network), then --dump-dom prints the document as it then is.
std::string DumpDom(const std::string& browser, const std::string& url, const TempDir& dir) {
  const std::string profile = dir.str() + "/chromium-profile";
  const std::string output = dir.str() + "/dom.html";
  // --no-sandbox: the suite may run as root (in a container), where chromium's sandbox
  // refuses to start. The page is our own, served on loopback.
  const std::string command = "timeout 120 " + browser +
                              " --headless=new --no-sandbox --disable-gpu --no-first-run"
                              " --disable-dev-shm-usage --user-data-dir=" +
                              profile + " --virtual-time-budget=15000 --dump-dom '" + url + "' > " +
                              output + " 2> " + dir.str() + "/chromium.log";
  if (std::system(command.c_str()) != 0) return "";
  std::ifstream in(output);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// StatValue reads the number a stat card holds: <dd id="stat-NAME" data-value="N">.
int64_t StatValue(const std::string& dom, const std::string& name) {
  std::smatch match;
  const std::regex card("id=\"stat-" + name + "\" data-value=\"([0-9]+)\"");
  return std::regex_search(dom, match, card) ? std::stoll(match[1].str()) : -1;
}

TEST(StatusPage, ABrowserShowsTheDaemonsStatsAndTheGraphOfACall) {
  const std::string browser = Chromium();
  if (browser.empty()) {
    GTEST_SKIP() << "no chromium on this machine (scripts/setup installs Debian's chromium); "
                    "the status page is not tested in a browser here";
  }
  TempDir dir;
  const std::string token_file = dir.str() + "/token";
  std::ofstream(token_file) << kToken << "\n";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--listen", "127.0.0.1:0",
                            "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file}))
      << daemon.log();
  const std::string page = PageAddress(daemon.log());
  ASSERT_FALSE(page.empty()) << daemon.log();
  ASSERT_FALSE(page.ends_with(":0")) << "the port chosen is logged";

  auto stub = Stub(daemon.address());
  for (int n : {12, 5, 12}) {
    grpc::ClientContext context;
    WithToken(context, kToken);
    v1::CallReply reply;
    ASSERT_TRUE(stub->Call(&context, Request("demo.fib", {Int(n)}), &reply).ok());
  }

  // Opened once with ?token=, the page sets its cookie and redirects; the fragment names the
  // call to draw, as a search does.
  const std::string dom =
      DumpDom(browser, "http://" + page + "/?token=" + kToken + "#call=demo.fib%205", dir);
  ASSERT_FALSE(dom.empty()) << "chromium failed; see " << dir.str() << "/chromium.log";
  EXPECT_NE(dom.find("data-loaded=\"true\""), std::string::npos) << "the stats arrived\n" << dom;

  v1::StatsReply stats;
  {
    grpc::ClientContext context;
    WithToken(context, kToken);
    ASSERT_TRUE(stub->Stats(&context, v1::StatsRequest(), &stats).ok());
  }
  EXPECT_EQ(StatValue(dom, "calls"), static_cast<int64_t>(stats.calls())) << dom;
  EXPECT_EQ(StatValue(dom, "calls"), 3);
  EXPECT_EQ(StatValue(dom, "executions"), static_cast<int64_t>(stats.executions())) << dom;
  EXPECT_EQ(StatValue(dom, "executions"), 13) << "fib 12 is 13 tasks; fib 5 was among them";
  EXPECT_EQ(StatValue(dom, "tasks"), static_cast<int64_t>(stats.tasks())) << dom;
  EXPECT_EQ(StatValue(dom, "hits_memory"), static_cast<int64_t>(stats.hits_memory())) << dom;
  // The top-functions tables list the function that ran.
  EXPECT_TRUE(std::regex_search(dom, std::regex("<table id=\"top-calls\">.*<td>demo\\.fib</td>")))
      << dom;

  // Recent executions: the 13 bodies that ran, each with why.
  EXPECT_TRUE(std::regex_search(
      dom, std::regex("<table id=\"executions-table\">.*<td>demo\\.fib</td><td>12</td>.*"
                      "first execution")))
      << dom;

  // The graph of demo.fib 5: one node per n from 5 down to 0, each labelled with its
  // function and argument, as the Graph RPC describes it.
  EXPECT_NE(dom.find("<div id=\"graph\" data-state=\"done\"><svg"), std::string::npos) << dom;
  v1::GraphReply graph;
  {
    grpc::ClientContext context;
    WithToken(context, kToken);
    v1::GraphRequest request;
    *request.mutable_call() = Request("demo.fib", {Int(5)});
    ASSERT_TRUE(stub->Graph(&context, request, &graph).ok());
  }
  ASSERT_EQ(graph.nodes_size(), 6);
  const std::string svg = dom.substr(dom.find("<svg"));
  for (const v1::GraphNode& node : graph.nodes()) {
    // The node's group, up to the next node's.
    const std::string opening = "<g id=\"task" + std::to_string(node.task()) + "\" class=\"node\">";
    const size_t begin = svg.find(opening);
    ASSERT_NE(begin, std::string::npos) << "task " << node.task() << "\n" << svg;
    const size_t end = svg.find("class=\"node\"", begin + opening.size());
    const std::string group = svg.substr(begin, end == std::string::npos ? end : end - begin);
    EXPECT_NE(group.find(">demo.fib</text>"), std::string::npos) << group;
    EXPECT_NE(group.find(">" + node.args() + "</text>"), std::string::npos) << group;
  }
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(StatusPage, TheTokenIsRequiredAsHeaderOrCookie) {
  TempDir dir;
  const std::string token_file = dir.str() + "/token";
  std::ofstream(token_file) << kToken << "\n";
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start(
      {"--data-dir", dir.str(), "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file}))
      << daemon.log();
  const std::string page = PageAddress(daemon.log());
  ASSERT_FALSE(page.empty()) << daemon.log();

  for (const std::string path : {"/", "/status.js", "/api/stats", "/api/graph?call=demo.fib%201"}) {
    EXPECT_EQ(StatusOf(Get(page, path)), 401) << path;
    EXPECT_EQ(StatusOf(Get(page, path, "Authorization: Bearer wrong\r\n")), 401) << path;
    EXPECT_EQ(StatusOf(Get(page, path, "Cookie: turbine_token=00\r\n")), 401) << path;
  }
  EXPECT_EQ(StatusOf(Get(page, "/?token=wrong")), 401);

  const std::string bearer = std::string("Authorization: Bearer ") + kToken + "\r\n";
  const std::string stats = Get(page, "/api/stats", bearer);
  EXPECT_EQ(StatusOf(stats), 200) << stats;
  EXPECT_NE(stats.find("\"calls\""), std::string::npos) << stats;
  // The scheme's name ignores case; the token does not.
  EXPECT_EQ(StatusOf(Get(page, "/api/stats", std::string("Authorization: bearer ") + kToken + "\r\n")),
            200);
  // The token once: with a second Authorization, either order, it is refused (before, the
  // first one was all that was looked at).
  EXPECT_EQ(StatusOf(Get(page, "/api/stats", bearer + "Authorization: Bearer wrong\r\n")), 401);
  EXPECT_EQ(StatusOf(Get(page, "/api/stats", "Authorization: Bearer wrong\r\n" + bearer)), 401);
  std::string upper(kToken);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper != kToken) {
    EXPECT_EQ(StatusOf(Get(page, "/api/stats", "Authorization: Bearer " + upper + "\r\n")), 401);
  }

  // ?token= once: a redirect to the same page without it, setting the cookie.
  const std::string redirect = Get(page, std::string("/?token=") + kToken);
  ASSERT_EQ(StatusOf(redirect), 303) << redirect;
  EXPECT_NE(redirect.find("\r\nLocation: /\r\n"), std::string::npos) << redirect;
  std::smatch cookie;
  ASSERT_TRUE(std::regex_search(redirect, cookie,
                                std::regex("\r\nSet-Cookie: (turbine_token=[0-9a-f]+); Path=/; "
                                           "HttpOnly; SameSite=Strict\r\n")))
      << redirect;
  EXPECT_EQ(redirect.find(kToken), std::string::npos) << "the cookie does not show the token";
  const std::string with_cookie = Get(page, "/api/stats", "Cookie: " + cookie[1].str() + "\r\n");
  EXPECT_EQ(StatusOf(with_cookie), 200) << with_cookie;
  const std::string html = Get(page, "/", "Cookie: " + cookie[1].str() + "\r\n");
  EXPECT_EQ(StatusOf(html), 200);
  EXPECT_NE(html.find("<title>turbined status</title>"), std::string::npos);
  // The redirect keeps the rest of what was asked (before, /api/graph lost its call).
  const std::string graph_redirect =
      Get(page, std::string("/api/graph?call=demo.fib%205&token=") + kToken + "&depth=2");
  ASSERT_EQ(StatusOf(graph_redirect), 303) << graph_redirect;
  EXPECT_NE(graph_redirect.find("\r\nLocation: /api/graph?call=demo.fib%205&depth=2\r\n"),
            std::string::npos)
      << graph_redirect;
  EXPECT_EQ(graph_redirect.find(kToken), std::string::npos);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(StatusPage, AnAddressOffThisMachineNeedsInsecure) {
  TempDir dir;
  {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir.str(), "--http-listen", "0.0.0.0:0"}));
    EXPECT_EQ(daemon.Reap(), kExitBadConfig) << daemon.log();
    EXPECT_NE(daemon.log().find("status page address '0.0.0.0:0': refusing to serve the status "
                                "page off this machine"),
              std::string::npos)
        << daemon.log();
  }
  for (const std::string address : {"[::1]:0", "7879", "unix:/tmp/page.sock", "127.0.0.1:99999"}) {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir.str(), "--http-listen", address}));
    EXPECT_EQ(daemon.Reap(), kExitBadConfig) << daemon.log();
    EXPECT_NE(daemon.log().find("status page address '" + address + "'"), std::string::npos)
        << daemon.log();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "db")) << "refused before opening the cache";

  DaemonProcess trusted;
  ASSERT_TRUE(trusted.Start({"--data-dir", dir.str(), "--http-listen", "0.0.0.0:0", "--insecure"}))
      << trusted.log();
  const std::string page = PageAddress(trusted.log());
  ASSERT_TRUE(page.starts_with("0.0.0.0:")) << trusted.log();
  EXPECT_EQ(StatusOf(Get("127.0.0.1:" + page.substr(page.rfind(':') + 1), "/api/stats")), 200);
  EXPECT_EQ(trusted.Stop(SIGTERM), 0) << trusted.log();
}

// StillOpen tells whether the server has not closed `fd` (nothing to read, no EOF).
bool StillOpen(int fd) {
  char byte = 0;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Connections that send nothing (a browser's preconnects, a scanner) do not stop the page
// or the metrics from answering others: the answer comes while they are still open, not
// once the server has given up on them. Before, 4 silent connections held every thread of
// the page (2 of the metrics) until its 10 s timeout.
TEST(StatusPage, SilentConnectionsDoNotStopTheAnswers) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--http-listen", "127.0.0.1:0",
                            "--metrics-listen", "127.0.0.1:0"}))
      << daemon.log();
  const std::string page = PageAddress(daemon.log());
  ASSERT_FALSE(page.empty()) << daemon.log();
  std::smatch match;
  const std::string log = daemon.log();
  ASSERT_TRUE(std::regex_search(log, match,
                                std::regex("turbined metrics on http://([0-9.]+:[0-9]+)/metrics")))
      << log;
  const std::string metrics = match[1].str();

  for (const auto& [address, path] : {std::pair{page, std::string("/api/stats")},
                                      std::pair{metrics, std::string("/metrics")}}) {
    std::vector<int> silent;
    for (int i = 0; i < 6; ++i) silent.push_back(Connect(address));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // each taken by a thread
    const std::string answer = Get(address, path);
    bool all_open = true;
    for (int fd : silent) {
      all_open = all_open && fd >= 0 && StillOpen(fd);
      ::close(fd);
    }
    EXPECT_EQ(StatusOf(answer), 200) << address << path << ": " << answer.substr(0, 200);
    EXPECT_TRUE(all_open) << address << path
                          << ": answered only once the silent connections were cut off";
  }
}

TEST(StatusPage, BadRequestsGet4xxAndTheDaemonGoesOn) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--http-listen", "127.0.0.1:0"}))
      << daemon.log();
  const std::string page = PageAddress(daemon.log());
  ASSERT_FALSE(page.empty()) << daemon.log();

  const auto status_of = [&page](const std::string& request) {
    return StatusOf(Exchange(page, request));
  };
  // Not HTTP at all, a bad request line, a header without a colon.
  EXPECT_GE(status_of("garbage\r\n\r\n"), 400);
  EXPECT_LT(status_of("garbage\r\n\r\n"), 500);
  EXPECT_EQ(status_of("GET\r\n\r\n") / 100, 4);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nno colon here\r\n\r\n") / 100, 4);
  // Headers past the bound (16 KiB), and a body where none is taken.
  EXPECT_EQ(
      status_of("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 << 10, 'a') + "\r\n\r\n") /
          100,
      4);
  const std::string post = Exchange(page,
                                    "POST /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                    "Content-Length: 5\r\n\r\nhello");
  EXPECT_EQ(StatusOf(post), 405);
  // JSON like every other refusal (it was plain text), saying what is allowed.
  EXPECT_NE(post.find("Content-Type: application/json"), std::string::npos) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos) << post;
  EXPECT_NE(post.find("{\"error\":\"only GET and HEAD\"}"), std::string::npos) << post;
  // Pages that do not exist, and graph requests the page cannot use.
  EXPECT_EQ(StatusOf(Get(page, "/etc/passwd")), 404);
  EXPECT_EQ(StatusOf(Get(page, "/../../etc/passwd")) / 100, 4);
  EXPECT_EQ(StatusOf(Get(page, "/api/graph")), 400);
  EXPECT_EQ(StatusOf(Get(page, "/api/graph?call=")), 400);
  EXPECT_EQ(StatusOf(Get(page, "/api/graph?call=demo.fib%20%5B1")), 400) << "unclosed [";
  EXPECT_EQ(StatusOf(Get(page, "/api/graph?call=demo.fib%20%22x")), 400) << "unclosed quote";
  EXPECT_EQ(StatusOf(Get(page, "/api/graph?call=no.such%201")), 404);
  EXPECT_EQ(StatusOf(Get(page, "/api/graph?call=demo.fib%201&depth=x")), 400);
  // Out of the field's range, short or long (the long one was taken as no depth at all).
  for (const char* depth : {"4294967296", "99999999999999999999", "-1"}) {
    const std::string out_of_range =
        Get(page, std::string("/api/graph?call=demo.fib%201&depth=") + depth);
    EXPECT_EQ(StatusOf(out_of_range), 400) << depth;
    EXPECT_NE(out_of_range.find("from 0 to 4294967295"), std::string::npos) << out_of_range;
  }
  EXPECT_EQ(StatusOf(Get(page, "/api/graph?call=" + std::string(5000, 'a'))), 400);
  const std::string wrong_type = Get(page, "/api/graph?call=demo.fib%20text");
  EXPECT_EQ(StatusOf(wrong_type), 400) << wrong_type;
  EXPECT_NE(wrong_type.find("{\"error\":"), std::string::npos) << wrong_type;

  // A host name that is not this machine's: a page elsewhere, through DNS rebinding.
  EXPECT_EQ(StatusOf(Exchange(page,
                              "GET /api/stats HTTP/1.1\r\nHost: evil.example:80\r\n"
                              "Connection: close\r\n\r\n")),
            421);
  EXPECT_EQ(StatusOf(Exchange(page,
                              "GET /api/stats HTTP/1.1\r\nHost: localhost\r\n"
                              "Connection: close\r\n\r\n")),
            200);
  EXPECT_EQ(StatusOf(Exchange(page,
                              "GET /api/stats HTTP/1.1\r\nHost: LocalHost:80\r\n"
                              "Connection: close\r\n\r\n")),
            200)
      << "host names ignore case";
  // Two Host headers: the second could name another host, whichever one is checked.
  for (const char* hosts : {"Host: localhost\r\nHost: evil.example\r\n",
                            "Host: evil.example\r\nHost: localhost\r\n"}) {
    EXPECT_EQ(StatusOf(Exchange(page, std::string("GET /api/stats HTTP/1.1\r\n") + hosts +
                                          "Connection: close\r\n\r\n")),
              400)
        << hosts;
  }
  // Two lengths: which one frames the body is ambiguous (RFC 9112 says refuse). Before,
  // the first won.
  EXPECT_EQ(StatusOf(Exchange(page,
                              "GET /api/stats HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n")),
            400);
  // What civetweb refuses itself is answered as the page answers: JSON, and every answer
  // forbids loading anything from elsewhere.
  for (const std::string& request :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/2.0\r\nHost: localhost\r\n\r\n"),
        std::string("POST /api/stats HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n"),
        "GET /" + std::string(17000, 'a') + " HTTP/1.1\r\nHost: localhost\r\n\r\n"}) {
    const std::string answer = Exchange(page, request);
    EXPECT_EQ(StatusOf(answer) / 100, 4 + (request.find("HTTP/2.0") != std::string::npos))
        << answer;
    EXPECT_NE(answer.find("Content-Security-Policy: default-src 'self'"), std::string::npos)
        << request.substr(0, 40) << "\n" << answer;
    EXPECT_NE(answer.find("Content-Type: application/json"), std::string::npos) << answer;
  }
  // A whole URL as the target: one the HTTP library takes for its own reaches the page,
  // which does not serve it either.
  const std::string port = page.substr(page.rfind(':') + 1);
  EXPECT_EQ(StatusOf(Exchange(page, "GET http://mydomain.com:" + port +
                                        "/api/stats HTTP/1.1\r\nHost: localhost\r\n"
                                        "Connection: close\r\n\r\n")),
            400);
  // No Host at all cannot show it is not a rebound name; and a GET carries no body.
  EXPECT_EQ(StatusOf(Exchange(page, "GET /api/stats HTTP/1.1\r\nConnection: close\r\n\r\n")),
            400);
  EXPECT_EQ(StatusOf(Exchange(page,
                              "GET /api/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Content-Length: 5\r\n\r\nhello")),
            400);
  // Before: 200, a chunked body having no length.
  EXPECT_EQ(StatusOf(Exchange(page,
                              "GET /api/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")),
            400);

  // An argument it cannot read is repeated at most 1 KiB of it (before: twice whole).
  const std::string huge = Get(page, "/api/graph?call=demo.fib%20" + std::string(4000, '9'));
  EXPECT_EQ(StatusOf(huge), 400) << huge.substr(0, 300);
  EXPECT_LT(huge.size(), 2000u) << huge.substr(0, 300);
  EXPECT_NE(huge.find("bytes)"), std::string::npos) << huge.substr(0, 300);

  // Still serving, and the graph of a good call is an SVG picture.
  const std::string svg = Get(page, "/api/graph?call=demo.fib%203");
  EXPECT_EQ(StatusOf(svg), 200) << svg;
  EXPECT_NE(svg.find("Content-Type: image/svg+xml"), std::string::npos) << svg;
  EXPECT_NE(svg.find("<svg"), std::string::npos) << svg;

  // A graph cut short says so in the picture, and why.
  {
    grpc::ClientContext context;
    v1::CallReply reply;
    ASSERT_TRUE(
        Stub(daemon.address())->Call(&context, Request("demo.fib", {Int(10)}), &reply).ok());
  }
  const std::string cut = Get(page, "/api/graph?call=demo.fib%2010&depth=1");
  EXPECT_EQ(StatusOf(cut), 200) << cut;
  // The depth cut it, not the bound on tasks: the note says which (before, it always
  // blamed the 200 tasks).
  EXPECT_NE(cut.find("(more dependencies left out: raise depth)"), std::string::npos) << cut;
  EXPECT_EQ(cut.find("at most 200 tasks"), std::string::npos) << cut;
  int nodes = 0;
  for (size_t at = cut.find("<g id=\"task"); at != std::string::npos;
       at = cut.find("<g id=\"task", at + 1)) {
    ++nodes;
  }
  EXPECT_EQ(nodes, 3) << "fib 10 and the two it reads\n" << cut;

  // A method's call as `turbine call` takes it: --this and its value are the receiver, not
  // two more arguments (before, every method call was refused with "pass its receiver").
  v1::CallReply path;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(Stub(daemon.address())
                    ->Call(&context, Request("fs.path", {testing::Str("/etc/hostname")}), &path)
                    .ok());
  }
  const std::string method =
      Get(page, "/api/graph?call=Path.parent%20--this%20" + std::to_string(path.ref().task()));
  EXPECT_EQ(StatusOf(method), 200) << method;
  EXPECT_NE(method.find("Path.parent"), std::string::npos) << method;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

}  // namespace
}  // namespace turbine
