#include "connection.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <sys/un.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "turbine/tls/pem_files.h"

namespace turbine::client {
namespace {

// The payload ToStatus puts on an UNAVAILABLE the daemon sent itself (DaemonAnswered).
constexpr char kDaemonAnsweredPayload[] = "turbine.dev/daemon-answered";

}  // namespace

bool DaemonAnswered(const absl::Status& status) {
  return status.GetPayload(kDaemonAnsweredPayload).has_value();
}

namespace detail {
namespace {

// Why a connection neither failed nor answered, for the error of a call that waited for it.
constexpr char kAcceptedButNotAnswered[] =
    ": the connection was taken but not answered (a turbined at its --max-connections bound "
    "holds new connections until one closes; so does a stopped process)";

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const ConnectOptions& options) {
  if (!options.tls) return grpc::InsecureChannelCredentials();
  const TlsOptions& tls = *options.tls;
  if (absl::StartsWith(options.address, "unix")) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS is for TCP addresses, not ", options.address,
                     ": turbined serves its unix sockets without TLS (their file mode decides "
                     "who may connect)"));
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "a TLS client certificate needs both its certificate file and its key file");
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> ca = tls::ReadCaFile(tls.ca_file, "CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!tls.cert_file.empty()) {
    absl::StatusOr<tls::KeyPair> pair = tls::ReadKeyPair(tls.cert_file, tls.key_file);
    if (!pair.ok()) return pair.status();
    ssl.pem_cert_chain = std::move(pair->cert_pem);
    ssl.pem_private_key = std::move(pair->key_pem);
  }
  return grpc::SslCredentials(ssl);
}

// HandshakeFailure explains a connection that failed in its TLS handshake, or (plain text)
// was closed by the daemon at once, as a TLS listener does: the cause in words, from gRPC's
// message. Empty for any other failure. gRPC's own words stay in the message after it.
std::string HandshakeFailure(const ConnectOptions& options, absl::string_view message) {
  if (!absl::StartsWith(message, "failed to connect to all addresses")) return "";
  const bool closed =
      absl::StrContains(message, "Socket closed") || absl::StrContains(message, "reset by peer");
  if (!options.tls) {
    if (!closed || absl::StartsWith(options.address, "unix")) return "";
    return absl::StrCat("the daemon at ", options.address,
                        " closed the connection at once, as a TLS listener does when spoken to "
                        "in plain text: if it serves TLS, connect with TLS (its CA file)");
  }
  std::string cause;
  if (absl::StrContains(message, "certificate verify failed")) {
    // OpenSSL says only that verification failed: the likeliest cause first.
    cause = options.tls->ca_file.empty()
                ? "the daemon's certificate did not verify: not signed by a CA this system "
                  "trusts (give the CA file that signed it), expired, or not for a server"
                : absl::StrCat("the daemon's certificate did not verify against ",
                               options.tls->ca_file,
                               ": not signed by a CA in it (wrong CA file?), expired, or not for "
                               "a server");
  } else if (absl::StrContains(message, "not in peer certificate")) {
    cause =
        "the daemon's certificate does not carry the name connected to (give the name it "
        "carries as the TLS server name)";
  } else if (absl::StrContains(message, "wrong version number")) {
    cause = "the daemon does not serve TLS on this address (it answered in plain text)";
  } else if (closed) {
    cause = options.tls->cert_file.empty()
                ? "the daemon closed the connection: it likely requires a client certificate "
                  "(mutual TLS), and none was given"
                : "the daemon closed the connection: it likely did not accept the client "
                  "certificate (not signed by the CA it trusts for clients? expired?)";
  } else if (absl::StrContains(message, "Handshake") || absl::StrContains(message, "handshake")) {
    cause = "gRPC's reason follows";
  } else {
    return "";
  }
  return absl::StrCat("TLS handshake with ", options.address, " failed: ", cause);
}

// CheckToken refuses a token gRPC cannot send: it goes in a header, whose value must be
// printable ASCII, and gRPC aborts the whole process on any other byte (a token file
// wrapped over two lines, say) rather than failing the call.
absl::Status CheckToken(const std::string& token) {
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char byte = static_cast<unsigned char>(token[i]);
    if (byte >= 0x20 && byte <= 0x7E) continue;
    const std::string what = byte == '\n'   ? "a line break"
                             : byte == '\r' ? "a carriage return"
                             : byte == '\t' ? "a tab"
                                            : absl::StrFormat("the byte 0x%02X", byte);
    return absl::InvalidArgumentError(absl::StrCat(
        "the token holds ", what, " at byte ", i + 1, " of ", token.size(),
        ": a token is one line of printable ASCII (0x20 to 0x7E), as it travels in a gRPC "
        "header"));
  }
  return absl::OkStatus();
}

// CheckPort refuses a numeric TCP port that is not a number from 0 to 65535. gRPC would
// take one past 65535 modulo 65536 (99999 is 34463), a negative one too, and the digits
// before anything else ("7878x" is 7878): each connects to another port without a word.
// What is not a port is left to gRPC: a unix: address, an IPv6 literal without a port
// ("[::1]"), a URI path ("dns://8.8.8.8:53/host"), a service name ("host:http").
absl::Status CheckPort(const std::string& address) {
  if (address.starts_with("unix:") || address.starts_with("unix-abstract:")) {
    return absl::OkStatus();
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::OkStatus();
  const std::string port = address.substr(colon + 1);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  // A path is a URI's ("dns://8.8.8.8:53/host"); without a scheme, "host:47100/x" is a
  // port with junk after it, which gRPC would send to DNS whole.
  const bool uri = address.find("://") != std::string::npos;
  if (port.find(']') != std::string::npos || (uri && port.find('/') != std::string::npos)) {
    return absl::OkStatus();
  }
  if (colon == 0) {  // ":47100": gRPC would ask DNS for a host named ""
    return absl::InvalidArgumentError(absl::StrCat(
        "address ", address, " names no host before the port (127.0.0.1", address, ", say)"));
  }
  if (!port.empty() && !digit(port[0]) && port[0] != '-' && port[0] != '+') {
    return absl::OkStatus();
  }
  if (port.empty() || !std::all_of(port.begin(), port.end(), digit)) {
    return absl::InvalidArgumentError(absl::StrCat("address ", address, ": the port '", port,
                                                   "' is not a number from 0 to 65535"));
  }
  const size_t digits = port.find_first_not_of('0');
  if (digits == std::string::npos || (port.size() - digits <= 5 && std::stoi(port) <= 65535)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("address ", address, ": port ", port, " is out of range (0 to 65535)"));
}

// CheckUnixPath refuses an empty unix socket path (gRPC: "empty address list", as if no
// daemon were there) and one longer than a socket address holds: gRPC would fail to make
// the channel with "Failed to create secure client channel", which reads as a TLS problem,
// and the CLI would call it the daemon's refusal.
absl::Status CheckUnixPath(const std::string& address) {
  if (!address.starts_with("unix:")) return absl::OkStatus();
  std::string_view path = std::string_view(address).substr(5);
  if (path.starts_with("//")) path.remove_prefix(2);  // unix:///absolute/path
  if (path.empty()) {  // gRPC: "empty address list", as if no daemon were there
    return absl::InvalidArgumentError(
        absl::StrCat("the address ", address, " names no socket path"));
  }
  constexpr size_t kMaxPath = sizeof(sockaddr_un{}.sun_path) - 1;
  if (path.size() <= kMaxPath) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("the socket path ", std::string(path), " is ", path.size(),
                   " bytes, more than a unix socket address holds (", kMaxPath,
                   "): use a shorter --data-dir, or a TCP address"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Connection>> Connection::Create(ConnectOptions options) {
  if (options.address.empty()) options.address = DefaultAddress();
  if (options.deadline <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("ConnectOptions.deadline must be positive");
  }
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("ConnectOptions.max_message_bytes must be positive");
  }
  if (absl::Status token = CheckToken(options.token); !token.ok()) return token;
  if (absl::Status port = CheckPort(options.address); !port.ok()) return port;
  if (absl::Status path = CheckUnixPath(options.address); !path.ok()) return path;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  return std::make_shared<const Connection>(std::move(options), *std::move(credentials));
}

Connection::Connection(ConnectOptions options_in,
                       std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options(std::move(options_in)), credentials_(std::move(credentials)), link_(NewLink()) {}

// A channel whose attempt to connect failed stays in TRANSIENT_FAILURE until its next
// attempt succeeds, and fails every call at once meanwhile; attempts are spaced by a back-off
// that grows to 2 minutes by default (1 s here). So a daemon that came back would go on
// being "unreachable" for a while, and gRPC 1.51 keeps failing calls even while an attempt
// it was told to make now (ChannelResetConnectionBackoff) is under way. A fresh channel, with
// its own connection (a local subchannel pool: gRPC otherwise shares one connection, and
// its failure, among the channels to an address), makes one new attempt for the call that
// finds the old one failed: that call fails only if the daemon is unreachable now.
std::shared_ptr<const Link> Connection::CurrentLink() const {
  std::shared_ptr<const Link> failed;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  if (link_->channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
    failed = std::exchange(link_, NewLink());
  }
  return link_;
}

std::shared_ptr<const Link> Connection::NewLink() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (options.tls && !options.tls->server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls->server_name);
  }
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // While the daemon is away, a waiting call (wait_for_ready, a Watch coming back) sees it
  // return within about a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return std::make_shared<const Link>(
      grpc::CreateCustomChannel(options.address, credentials_, args));
}

Link::Link(std::shared_ptr<grpc::Channel> channel_in)
    : channel(std::move(channel_in)),
      turbine(v1::Turbine::NewStub(channel)),
      health(grpc::health::v1::Health::NewStub(channel)) {
  watcher_ = std::make_unique<ChannelWatcher>(channel.get());
}

Link::~Link() { watcher_->Stop(); }

void Connection::PrepareContext(grpc::ClientContext& context, bool with_deadline) const {
  if (!options.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
  context.set_wait_for_ready(options.wait_for_ready);
  if (with_deadline) {
    context.set_deadline(std::chrono::system_clock::now() + options.deadline);
  }
}

absl::Status Connection::ToStatus(const grpc::Status& status, const Link& link) const {
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      link.channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
    // A call that waited for the daemon hears only that time ran out. One more attempt
    // that does not wait tells why the connection failed: a TLS handshake that failed
    // says so, rather than looking like a daemon not running.
    grpc::ClientContext probe;
    probe.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(250));
    grpc::health::v1::HealthCheckResponse reply;
    const grpc::Status why = link.health->Check(&probe, grpc::health::v1::HealthCheckRequest(), &reply);
    std::string reason;
    if (why.error_code() == grpc::StatusCode::UNAVAILABLE) {
      const std::string failure = HandshakeFailure(options, why.error_message());
      reason = absl::StrCat(": ", failure.empty() ? why.error_message() : failure);
    } else if (why.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      // Neither refused nor answered: the connection waits in a listen backlog.
      reason = kAcceptedButNotAnswered;
    }
    return absl::UnavailableError(absl::StrCat("no connection to ", options.address, " within ",
                                               options.deadline.count(), " ms", reason));
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    const std::string failure = HandshakeFailure(options, status.error_message());
    if (!failure.empty()) {
      return absl::UnavailableError(absl::StrCat(failure, " (", status.error_message(), ")"));
    }
  }
  absl::Status converted(static_cast<absl::StatusCode>(status.error_code()),
                         status.error_message());
  // A connection that is up when the call failed: the daemon answered UNAVAILABLE itself.
  // Unless gRPC's words say the connection broke: the channel may not have left READY yet.
  const std::string& message = status.error_message();
  const bool broke = absl::StrContains(message, "Socket closed") ||
                     absl::StrContains(message, "Connection reset") ||
                     absl::StrContains(message, "Broken pipe") ||
                     absl::StrContains(message, "failed to connect") ||
                     absl::StrContains(message, "GOAWAY") ||
                     absl::StrContains(message, "Cancelling all calls");
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !broke &&
      link.channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
    converted.SetPayload(kDaemonAnsweredPayload, absl::Cord("1"));
  }
  return converted;
}

CallResult ResultFromReply(const v1::CallReply& reply) {
  CallResult result;
  switch (reply.result_case()) {
    case v1::CallReply::kValue:
      result.value = reply.value();
      break;
    case v1::CallReply::kError: {
      // An error with code OK would read as success; it is still an error.
      auto code = static_cast<absl::StatusCode>(reply.error().code());
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
      result.value = absl::Status(code, reply.error().message());
      break;
    }
    case v1::CallReply::RESULT_NOT_SET:
      result.value = absl::InternalError("the daemon sent a reply with neither value nor error");
      break;
  }
  result.ref = reply.ref();
  result.source = reply.source();
  result.micros = reply.micros();
  result.id = reply.id();
  return result;
}

}  // namespace detail
}  // namespace turbine::client
