// status_page.cc — the status page's HTTP server (status_page.h), on civetweb.
#include "status_page.h"

#include <absl/strings/escaping.h>
#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <arpa/inet.h>
#include <civetweb.h>
#include <google/protobuf/util/json_util.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "address.h"
#include "bearer_token.h"
#include "turbine/text.h"
#include "turbine/why.h"
#include "turbine/render/call_text.h"
#include "turbine/render/graph.h"

namespace turbine::server {
namespace {

// Recent executions the page lists.
constexpr size_t kShownExecutions = 50;

constexpr char kCookieName[] = "turbine_token";
// The longest call the search box may send (the URL, once decoded); a request line and
// its headers are bounded by civetweb's max_request_size, 16 KiB.
constexpr size_t kMaxCallBytes = 4096;
// A picture of more tasks than this is not readable, and Graphviz's layout of thousands
// of nodes takes long: the page asks for at most this many (the CLI has --depth).
constexpr uint32_t kMaxGraphNodes = 200;  // the note in GraphDot's picture says 200
constexpr auto kGraphTimeout = std::chrono::seconds(30);

// Every answer forbids loading anything from elsewhere and keeps the URL (which may hold
// the token once) out of Referer headers.
constexpr char kCommonHeaders[] =
    "Cache-Control: no-store\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'\r\n";

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 303:
      return "See Other";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 421:
      return "Misdirected Request";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return mg_get_response_code_text(nullptr, status);  // civetweb's own errors: 411, 505...
  }
}

void Send(mg_connection* connection, int status, absl::string_view content_type,
          absl::string_view body, absl::string_view extra_headers = "") {
  const mg_request_info* request = mg_get_request_info(connection);
  // A request civetweb could not parse has no method.
  const bool head = request != nullptr && request->request_method != nullptr &&
                    std::string_view(request->request_method) == "HEAD";
  const std::string headers = absl::StrCat(
      "HTTP/1.1 ", status, " ", StatusText(status), "\r\nContent-Type: ", content_type,
      "\r\nContent-Length: ", body.size(), "\r\n", kCommonHeaders, extra_headers, "\r\n");
  mg_write(connection, headers.data(), headers.size());
  if (!head) mg_write(connection, body.data(), body.size());
}

void SendError(mg_connection* connection, int status, absl::string_view message,
               absl::string_view extra_headers = "") {
  nlohmann::json body = {{"error", std::string(message)}};
  Send(connection, status, "application/json",
       body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), extra_headers);
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

// QueryValue reads ?name=... (URL-decoded); nullopt when absent, or too long to be real
// (then `*too_long` is set, if given).
std::optional<std::string> QueryValue(const mg_request_info* request, const char* name,
                                      size_t max_bytes, bool* too_long = nullptr) {
  if (request->query_string == nullptr) return std::nullopt;
  std::string value(max_bytes + 1, '\0');
  const int length = mg_get_var(request->query_string, std::strlen(request->query_string), name,
                                value.data(), value.size());
  if (too_long != nullptr) *too_long = length == -2;
  if (length < 0) return std::nullopt;  // -1: absent; -2: longer than max_bytes
  value.resize(static_cast<size_t>(length));
  return value;
}

// HeaderCount is how many times header `name` is in `request`.
int HeaderCount(const mg_request_info& request, absl::string_view name) {
  int count = 0;
  for (int i = 0; i < request.num_headers; ++i) {
    if (request.http_headers[i].name != nullptr &&
        absl::EqualsIgnoreCase(request.http_headers[i].name, name)) {
      ++count;
    }
  }
  return count;
}

// IsLoopbackHost tells whether a Host header ("localhost:7879", "127.0.0.1", "[::1]:80")
// names this machine.
bool IsLoopbackHost(std::string_view host) {
  if (host.starts_with("[")) return host.starts_with("[::1]");
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  // Host names ignore case.
  if (absl::EqualsIgnoreCase(absl::string_view(host.data(), host.size()), "localhost")) {
    return true;
  }
  in_addr v4{};
  return ::inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1 &&
         (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace

absl::StatusOr<std::string> CheckStatusPageAddress(const std::string& address, bool insecure) {
  return CheckHttpAddress(
      {.what = "status page address",
       .example = "127.0.0.1:7879",
       .refusal = "refusing to serve the status page off this machine without TLS: the token "
                  "and everything the page shows would cross the network in the clear"},
      address, insecure);
}

class StatusPage::Handler {
 public:
  Handler(TurbineService& service, std::string token, bool loopback)
      : service_(service),
        loopback_(loopback),
        token_(std::move(token)),
        cookie_value_(absl::BytesToHexString(token_)) {}

  // Handle answers one request; civetweb's return value is the status, for its log.
  int Handle(mg_connection* connection) {
    const mg_request_info* request = mg_get_request_info(connection);
    const std::string_view method = request->request_method;
    if (method != "GET" && method != "HEAD") {
      SendError(connection, 405, "only GET and HEAD", "Allow: GET, HEAD\r\n");
      return 405;
    }
    // A chunked body has no length (content_length is -1): refused all the same.
    if (request->content_length > 0 || HeaderCount(*request, "Transfer-Encoding") > 0) {
      SendError(connection, 400, "a GET or HEAD here has no body");
      return 400;
    }
    // A whole URL as the target ("GET http://host:port/ HTTP/1.1", the form for proxies):
    // civetweb serves those it takes for its own and drops the others unanswered, so none
    // is served here either.
    if (request->request_uri == nullptr || request->request_uri[0] != '/') {
      SendError(connection, 400, "ask for a path (/api/stats), not a whole URL");
      return 400;
    }
    const std::string_view path = request->local_uri != nullptr ? request->local_uri : "";
    // On loopback, a request for another host name is a web page elsewhere whose name was
    // made to point at 127.0.0.1 (DNS rebinding), reaching in through the user's browser.
    // One that names no host cannot show it does not: HTTP/1.1 requires the header.
    const char* host = mg_get_header(connection, "Host");
    // mg_get_header gives the first: a second Host could name another, and HTTP/1.1 says
    // a request with more than one is refused.
    if (HeaderCount(*request, "Host") > 1) {
      SendError(connection, 400, "a request names its host once (one Host header)");
      return 400;
    }
    // civetweb reads the first: two lengths make the body ambiguous (request smuggling
    // through a proxy that read the other), which HTTP/1.1 says to refuse.
    if (HeaderCount(*request, "Content-Length") > 1) {
      SendError(connection, 400, "a request gives its length once (one Content-Length header)");
      return 400;
    }
    if (loopback_ && host == nullptr) {
      SendError(connection, 400, "a request must name its host (the Host header)");
      return 400;
    }
    if (loopback_ && !IsLoopbackHost(host)) {
      SendError(connection, 421, "this page answers to localhost and 127.0.0.1 only");
      return 421;
    }
    if (!token_.empty()) {
      if (int status = Authenticate(connection, request, path); status != 0) return status;
    }
    if (path == "/" || path == "/index.html") {
      Send(connection, 200, "text/html; charset=utf-8", kStatusPageHtml);
    } else if (path == "/status.js") {
      Send(connection, 200, "text/javascript; charset=utf-8", kStatusPageScript);
    } else if (path == "/status.css") {
      Send(connection, 200, "text/css; charset=utf-8", kStatusPageStyle);
    } else if (path == "/api/stats") {
      SendStats(connection);
    } else if (path == "/api/graph") {
      return SendGraph(connection, request);
    } else if (path == "/api/executions") {
      SendExecutions(connection);
    } else {
      SendError(connection, 404, "no such page");
      return 404;
    }
    return 200;
  }

 private:
  // SendExecutions answers the engine's recent executions, newest first, with why each ran.
  void SendExecutions(mg_connection* connection) {
    nlohmann::json executions = nlohmann::json::array();
    for (const ExecutionRecord& record : service_.engine().RecentExecutions(kShownExecutions)) {
      executions.push_back({{"task", record.task},
                            {"function", record.function},
                            {"args", EscapeInvalidUtf8(record.args)},
                            {"micros", record.duration_nanos / 1000},
                            {"reason", std::string(ReasonName(record.reason))},
                            {"reason_text", EscapeInvalidUtf8(record.reason_text)},
                            {"failed", record.failed},
                            {"output_changed", record.output_changed}});
    }
    nlohmann::json body = {{"available", true}, {"executions", std::move(executions)}};
    Send(connection, 200, "application/json",
         body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // QueryWithoutToken is "?" and the query's other parameters as they came (a graph's call
  // and depth), or "" if there are none: the redirect keeps what was asked.
  static std::string QueryWithoutToken(const char* query) {
    std::string kept;
    if (query == nullptr) return kept;
    for (absl::string_view part : absl::StrSplit(query, '&')) {
      const absl::string_view name = part.substr(0, part.find('='));
      if (part.empty() || name == "token") continue;
      // Kept only as URL characters: the query is echoed into a header.
      if (!std::all_of(part.begin(), part.end(), [](char c) { return c > ' ' && c < 0x7F; })) {
        continue;
      }
      absl::StrAppend(&kept, kept.empty() ? "?" : "&", part);
    }
    return kept;
  }

  // Authenticate returns 0 when the request carries the token (header or cookie), else
  // answers it (a redirect that sets the cookie, or 401) and returns the status.
  int Authenticate(mg_connection* connection, const mg_request_info* request,
                   std::string_view path) {
    if (std::optional<std::string> token = QueryValue(request, "token", 4096)) {
      if (!SameSecret(*token, token_)) {
        SendError(connection, 401, "wrong token");
        return 401;
      }
      // Once: from now on the cookie carries it, and the URL in the address bar (and the
      // history) no longer shows the token.
      Send(connection, 303, "text/plain", "",
           absl::StrCat("Location: ", path == "/" ? "/" : std::string(path),
                        QueryWithoutToken(request->query_string),
                        "\r\nSet-Cookie: ", kCookieName, "=", cookie_value_,
                        "; Path=/; HttpOnly; SameSite=Strict\r\n"));
      return 303;
    }
    // mg_get_header gives the first: a request naming two tokens is no proof of either.
    if (const char* header = mg_get_header(connection, "Authorization");
        header != nullptr && HeaderCount(*request, "Authorization") == 1) {
      if (CarriesBearerToken(header, token_)) return 0;
    }
    if (const char* cookies = mg_get_header(connection, "Cookie")) {
      char value[1024];
      const int length = mg_get_cookie(cookies, kCookieName, value, sizeof(value));
      if (length > 0 &&
          SameSecret(std::string_view(value, static_cast<size_t>(length)), cookie_value_)) {
        return 0;
      }
    }
    SendError(connection, 401,
              "this daemon needs its token: open /?token=TOKEN once, or send "
              "'Authorization: Bearer TOKEN'");
    return 401;
  }

  void SendStats(mg_connection* connection) {
    v1::StatsReply stats;
    service_.FillStats(&stats);
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(stats, &json, options).ok()) {
      SendError(connection, 500, "cannot format the stats");
      return;
    }
    Send(connection, 200, "application/json", json);
  }

  int SendGraph(mg_connection* connection, const mg_request_info* request) {
    std::optional<std::string> text = QueryValue(request, "call", kMaxCallBytes);
    if (!text.has_value()) {
      SendError(connection, 400, "give the call as ?call=FN%20ARG... (at most 4096 bytes)");
      return 400;
    }
    absl::StatusOr<v1::CallRequest> call = render::ParseCallText(*text);
    if (!call.ok()) {
      // It repeats the argument it could not read (twice for a number out of range).
      SendError(connection, 400, Echo(std::string(call.status().message())));
      return 400;
    }
    v1::GraphRequest graph_request;
    *graph_request.mutable_call() = *std::move(call);
    graph_request.set_max_nodes(kMaxGraphNodes);
    bool depth_too_long = false;
    std::optional<std::string> depth_text = QueryValue(request, "depth", 16, &depth_too_long);
    uint32_t depth = 0;
    if (depth_too_long || (depth_text.has_value() && !absl::SimpleAtoi(*depth_text, &depth))) {
      // A number too large for the field is refused like any other bad depth, however long.
      SendError(connection, 400, "depth must be a whole number from 0 to 4294967295");
      return 400;
    }
    if (depth_text.has_value()) graph_request.set_max_depth(depth);
    auto promise = std::make_shared<std::promise<absl::StatusOr<v1::GraphReply>>>();
    std::future<absl::StatusOr<v1::GraphReply>> future = promise->get_future();
    absl::Status started = service_.StartDescribe(
        graph_request,
        [promise](absl::StatusOr<v1::GraphReply> graph) { promise->set_value(std::move(graph)); });
    if (!started.ok()) {
      const int status = HttpStatusFor(started.code());
      SendError(connection, status, started.message());
      return status;
    }
    if (future.wait_for(kGraphTimeout) != std::future_status::ready) {
      SendError(connection, 504, "the graph took too long");
      return 504;
    }
    absl::StatusOr<v1::GraphReply> graph = future.get();
    if (!graph.ok()) {
      const int status = HttpStatusFor(graph.status().code());
      SendError(connection, status, graph.status().message());
      return status;
    }
    // What left the rest out, as `turbine graph` says it: the bound on tasks, the depth
    // asked for, or tasks that no longer exist.
    std::string note = "(dependencies that no longer exist left out)";
    if (graph->cut_to_message_size()) {
      note = "(more dependencies left out: what fits in one reply, --max-message-bytes)";
    } else if (graph->nodes_size() >= static_cast<int>(kMaxGraphNodes)) {
      note =
          "(more dependencies left out: the page shows at most 200 tasks; turbine graph shows "
          "up to 10,000)";
    } else if (graph_request.has_max_depth()) {
      note = "(more dependencies left out: raise depth)";
    }
    absl::StatusOr<std::string> svg = render::DotToSvg(render::GraphDot(*graph, note));
    if (!svg.ok()) {
      SendError(connection, 500, svg.status().message());
      return 500;
    }
    Send(connection, 200, "image/svg+xml", *svg);
    return 200;
  }

  TurbineService& service_;
  const bool loopback_;             // bound to loopback: only local host names are served
  const std::string token_;         // empty: none needed
  const std::string cookie_value_;  // the token in hex: any bytes fit in a cookie
};

namespace {

int HandleRequest(mg_connection* connection, void* handler) {
  return static_cast<StatusPage::Handler*>(handler)->Handle(connection);
}

// civetweb logs to stderr by default; the daemon's log says what matters.
int Quiet(const mg_connection*, const char*) { return 1; }

// AnswerCivetwebError answers what civetweb refuses before any handler sees it (a request
// it cannot parse, one too large, an HTTP version it does not speak) as the page answers
// its own errors: JSON, with the same headers, so that every answer forbids loading
// anything from elsewhere.
int AnswerCivetwebError(mg_connection* connection, int status, const char* message) {
  SendError(connection, status,
            message != nullptr && *message != '\0' ? message : StatusText(status));
  return 0;  // answered: civetweb sends nothing more
}

}  // namespace

absl::StatusOr<std::unique_ptr<StatusPage>> StatusPage::Start(const std::string& address,
                                                              TurbineService& service,
                                                              std::string auth_token) {
  std::unique_ptr<StatusPage> page(new StatusPage);
  page->handler_ = std::make_unique<Handler>(service, std::move(auth_token),
                                             /*loopback=*/address.starts_with("127."));
  // No document_root: nothing is served from the disk. Requests are small and bounded; a
  // client that stalls is cut off. civetweb gives each connection a thread until it is
  // done: a few connections that send nothing (a browser's preconnects, a port scanner)
  // must not hold every thread, so there are many, and a silent one goes after 5 s.
  const char* options[] = {"listening_ports",
                           address.c_str(),
                           "num_threads",
                           "16",
                           "request_timeout_ms",
                           "5000",
                           "max_request_size",
                           "16384",
                           "enable_keep_alive",
                           "yes",
                           nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = &Quiet;
  callbacks.http_error = &AnswerCivetwebError;
  page->server_ = mg_start(&callbacks, nullptr, options);
  if (page->server_ == nullptr) {
    return absl::UnavailableError("cannot serve the status page on " + address +
                                  " (in use, or not allowed)");
  }
  mg_set_request_handler(page->server_, "/", &HandleRequest, page->handler_.get());
  mg_server_port ports[2] = {};
  if (mg_get_server_ports(page->server_, 2, ports) != 1 || ports[0].port <= 0) {
    return absl::UnavailableError("cannot serve the status page on " + address);
  }
  page->address_ = address.substr(0, address.rfind(':')) + ":" + std::to_string(ports[0].port);
  return page;
}

StatusPage::~StatusPage() {
  if (server_ == nullptr) return;
  if (address_.empty()) {
    mg_stop(server_);
    return;
  }
  StopHttpServer(address_, [this] { mg_stop(server_); });
}

}  // namespace turbine::server
