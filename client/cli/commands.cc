#include "commands.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_replace.h>
#include <absl/strings/strip.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include "arguments.h"
#include "interrupt.h"
#include "long_call.h"
#include "output.h"
#include "turbine/client/json.h"
#include "turbine/render/call_text.h"
#include "turbine/render/graph.h"
#include "why_output.h"

namespace turbine::cli {
namespace {

ExitCode UsageError(absl::string_view message) {
  std::cerr << "turbine: " << message << "\n";
  return kUsage;
}

absl::StatusOr<v1::CallRequest> BuildRequest(const CallCommand& command) {
  // A protocol string: sent as other bytes, protobuf would print an error line of its own
  // and the daemon refuse the request.
  if (!render::IsUtf8(command.function)) {
    return absl::InvalidArgumentError("a function name is text (UTF-8), not other bytes");
  }
  std::vector<v1::Value> args;
  for (size_t i = 0; i < command.args.size(); ++i) {
    absl::StatusOr<v1::Value> value = ParseValueArgument(command.args[i]);
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument ", i + 1, " (", absl::StripLeadingAsciiWhitespace(command.args[i]),
                       "): ", value.status().message()));
    }
    args.push_back(*std::move(value));
  }
  std::optional<v1::TaskRef> this_ref;
  if (!command.this_ref.empty()) {
    absl::StatusOr<v1::TaskRef> ref = ParseRefArgument(command.this_ref);
    if (!ref.ok()) return absl::InvalidArgumentError(absl::StrCat("--this: ", ref.status().message()));
    this_ref = *std::move(ref);
  }
  return client::MakeCallRequest(command.function, std::move(args), std::move(this_ref));
}

void PrintFunctionError(const std::string& function, const absl::Status& error) {
  // Functions often name themselves in their messages ("demo.fib: n must be >= 0"): the
  // name is then said once, first. A message naming another function (the one that failed
  // below this one) keeps that name.
  absl::string_view message = error.message();
  absl::ConsumePrefix(&message, absl::StrCat(function, ": "));
  std::cerr << "turbine: " << function << ": ";
  // UNKNOWN is the plain "the function raised this" case; other codes say something more.
  if (error.code() != absl::StatusCode::kUnknown) {
    std::cerr << absl::StatusCodeToString(error.code()) << ": ";
  }
  std::cerr << message << "\n";
}

// PrintResult writes one call answer; returns whether it was a value.
bool PrintResult(const Session& session, const CallCommand& command,
                 const client::CallResult& result) {
  const std::string& function = command.function;
  if (session.json) {
    std::cout << Dump(CallResultJson(result)) << std::endl;
  } else if (result.value.ok() && command.raw && result.value->has_bytes_value()) {
    std::cout << result.value->bytes_value() << std::flush;
  } else if (result.value.ok() && command.raw && result.value->has_string_value()) {
    std::cout << result.value->string_value() << std::endl;
  } else if (result.value.ok()) {
    std::cout << Dump(client::ValueToJson(*result.value)) << std::endl;
  }
  if (!result.value.ok()) PrintFunctionError(function, result.value.status());
  return result.value.ok();
}

// ConnectionLost tells whether gRPC's UNAVAILABLE text says a connection it had made went
// away, rather than that none could be made ("failed to connect to all addresses", or
// --wait's "no connection to ADDR within N ms": a socket that closed during the handshake
// says "Socket closed" too).
bool ConnectionLost(absl::string_view message) {
  if (absl::StrContains(message, "failed to connect") ||
      absl::StrContains(message, "no connection to")) {
    return false;
  }
  for (absl::string_view lost :
       {"Socket closed", "Connection reset", "Broken pipe", "Connection aborted", "GOAWAY"}) {
    if (absl::StrContains(message, lost)) return true;
  }
  return false;
}

}  // namespace

ExitCode ReportRpcError(const Session& session, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable &&
      absl::StrContains(status.message(), "TLS")) {
    std::cerr << "turbine: " << status.message() << "\n"
              << "turbine: TLS settings: --tls-ca, --tls-cert with --tls-key, --tls-server-name "
                 "(or $TURBINE_TLS_CA, $TURBINE_TLS_CERT, $TURBINE_TLS_KEY, "
                 "$TURBINE_TLS_SERVER_NAME)\n";
    return kUnreachable;
  }
  if (status.code() == absl::StatusCode::kUnavailable &&
      absl::StrContains(status.message(), " is up but reports ")) {
    // Ping's answer from a daemon that stops: reached, so not "cannot reach" (which it was).
    std::cerr << "turbine: " << status.message() << "\n";
    return kUnreachable;
  }
  if (status.code() == absl::StatusCode::kUnavailable &&
      absl::StrContains(status.message(), "shutting down")) {
    // It was reached: a request it had accepted was cut by its stop (README: 5 s to finish).
    std::cerr << "turbine: turbined at " << session.address
              << " is shutting down; the request did not complete (start it again with: "
              << session.start_command << ")\n";
    return kUnreachable;
  }
  if (status.code() == absl::StatusCode::kUnavailable && client::DaemonAnswered(status)) {
    // Reached: the daemon itself cannot serve the request now (its store cannot write).
    std::cerr << "turbine: turbined at " << session.address
              << " answered UNAVAILABLE: " << status.message() << "\n";
    return kRpcError;
  }
  if (status.code() == absl::StatusCode::kUnavailable &&
      absl::StrContains(status.message(), "taken but not answered")) {
    std::cerr << "turbine: turbined at " << session.address << " did not answer in time\n"
              << "turbine: " << status.message() << "\n";
    return kUnreachable;
  }
  if (status.code() == absl::StatusCode::kUnavailable && ConnectionLost(status.message())) {
    // Reached, then gone (killed, crashed): "cannot reach ... is it running?" and gRPC's bare
    // "Socket closed" said less than this.
    std::cerr << "turbine: the connection to turbined at " << session.address
              << " was lost before it answered (" << status.message()
              << "): it stopped or crashed meanwhile (start it again with: "
              << session.start_command << ")\n";
    return kUnreachable;
  }
  if (status.code() == absl::StatusCode::kUnavailable) {
    std::cerr << "turbine: cannot reach turbined at " << session.address
              << " (is it running? start it with: " << session.start_command << ")\n"
              << "turbine: " << status.message() << "\n";
    return kUnreachable;
  }
  std::cerr << "turbine: " << absl::StatusCodeToString(status.code()) << ": " << status.message();
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    std::cerr << " (give the daemon's token with --token-file or TURBINE_TOKEN_FILE)";
  }
  std::cerr << "\n";
  return kRpcError;
}

ExitCode RunCall(const Session& session, const CallCommand& command) {
  absl::StatusOr<v1::CallRequest> request = BuildRequest(command);
  if (!request.ok()) return UsageError(request.status().message());
  absl::StatusOr<client::CallResult> result = CallWhileProgressing(session, *request);
  if (!result.ok()) return ReportRpcError(session, result.status());
  return PrintResult(session, command, *result) ? kOk : kFunctionError;
}

ExitCode RunGraph(const Session& session, const GraphCommand& command) {
  absl::StatusOr<v1::CallRequest> call = BuildRequest(command.call);
  if (!call.ok()) return UsageError(call.status().message());
  if (session.json && command.format.has_value() && *command.format != "json") {
    return UsageError("--json asks for JSON and --format for " + *command.format +
                      ": give one of them");
  }
  const std::string format = session.json ? "json" : command.format.value_or("dot");
  if (format != "dot" && format != "json" && format != "svg") {
    return UsageError("--format is dot, json or svg, not '" + format + "'");
  }
  v1::GraphRequest request;
  *request.mutable_call() = *std::move(call);
  if (command.depth.has_value()) request.set_max_depth(*command.depth);
  absl::StatusOr<v1::GraphReply> graph = session.client->Graph(request);
  if (!graph.ok()) return ReportRpcError(session, graph.status());
  // Left out: past the daemon's bound on tasks (10,000), past --depth, or gone from the
  // store (collected, or left behind by a version bump).
  constexpr int kDaemonsBound = 10000;
  std::string note = "(dependencies that no longer exist left out)";
  if (graph->cut_to_message_size()) {
    note = "(more dependencies left out: a reply of the daemon holds at most "
           "--max-message-bytes; lower --depth)";
  } else if (graph->nodes_size() >= kDaemonsBound) {
    note = absl::StrCat("(more dependencies left out: a graph shows at most ", kDaemonsBound,
                        " tasks)");
  } else if (command.depth.has_value()) {
    note = "(more dependencies left out: raise --depth)";
  }
  std::string text;
  if (format == "json") {
    text = Dump(render::GraphJson(*graph)) + "\n";
  } else if (format == "dot") {
    text = render::GraphDot(*graph, note);
  } else {
    absl::StatusOr<std::string> svg = render::DotToSvg(render::GraphDot(*graph, note));
    if (!svg.ok()) {
      std::cerr << "turbine: " << svg.status().message() << "\n";
      return kFunctionError;
    }
    text = *std::move(svg);
  }
  if (command.output.empty()) {
    std::cout << text << std::flush;
    return kOk;
  }
  std::ofstream file(command.output, std::ios::binary | std::ios::trunc);
  if (!file.is_open()) {
    return UsageError("cannot write " + command.output + ": " + std::strerror(errno));
  }
  file << text;
  file.close();
  if (!file) return UsageError("cannot write " + command.output);
  return kOk;
}

ExitCode RunWhy(const Session& session, const WhyCommand& command) {
  absl::StatusOr<v1::CallRequest> call = BuildRequest(command.call);
  if (!call.ok()) return UsageError(call.status().message());
  v1::WhyRequest request;
  *request.mutable_call() = *std::move(call);
  request.set_max_steps(command.max_steps);
  absl::StatusOr<v1::WhyReply> why = session.client->Why(request);
  if (!why.ok()) return ReportRpcError(session, why.status());
  if (session.json) {
    std::cout << Dump(WhyJson(*why)) << std::endl;
  } else {
    std::cout << WhyText(*why, command.max_steps) << std::flush;
  }
  return kOk;
}

namespace {

// WriteWhole replaces the regular file `path` with `bytes` all at once: written beside it and
// renamed over it, so that a disk that fills up leaves the file as it was, never half a
// trace. A path that is not a regular file (a device, a pipe) is written directly.
absl::Status WriteWhole(const std::string& path, const std::string& bytes) {
  std::error_code error;
  const bool regular = !std::filesystem::exists(path, error) ||
                       std::filesystem::is_regular_file(path, error);
  const std::string target = regular ? path + ".tmp-" + std::to_string(::getpid()) : path;
  std::ofstream file(target, std::ios::binary | std::ios::trunc);
  file << bytes;
  file.close();
  const int write_errno = errno;
  if (!file) {
    if (regular) std::filesystem::remove(target, error);
    return absl::UnavailableError(
        "cannot write " + path + ": " +
        (write_errno != 0 ? std::strerror(write_errno) : "the write failed") +
        "; nothing was written");
  }
  if (regular) {
    std::filesystem::rename(target, path, error);
    if (error) {
      std::filesystem::remove(target, error);
      return absl::UnavailableError("cannot write " + path + ": " + error.message());
    }
  }
  return absl::OkStatus();
}

}  // namespace

ExitCode RunTrace(const Session& session, const TraceCommand& command) {
  // A file that cannot be written is refused now, not after the whole trace. Opened to
  // append, so an existing one keeps its content if the trace then fails.
  std::error_code error;
  const bool existed = std::filesystem::exists(command.output, error);
  if (!std::ofstream(command.output, std::ios::binary | std::ios::app)) {
    return UsageError("cannot write " + command.output + ": " + std::strerror(errno));
  }
  if (!session.json) {
    // Said once the daemon is known to answer: not "tracing" before "cannot reach".
    if (absl::Status reached = session.client->Ping(); !reached.ok()) {
      if (!existed) std::filesystem::remove(command.output, error);
      return ReportRpcError(session, reached);
    }
  }
  std::future<absl::StatusOr<v1::TraceReply>> pending = std::async(
      std::launch::async, [&] { return session.client->Trace(command.seconds); });
  // Nor before a refusal (another trace runs), which comes back at once.
  if (!session.json &&
      pending.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout) {
    std::cerr << "turbine: tracing for " << command.seconds << " s...\n";
  }
  absl::StatusOr<v1::TraceReply> trace = pending.get();
  if (!trace.ok()) {
    if (!existed) std::filesystem::remove(command.output, error);
    return ReportRpcError(session, trace.status());
  }
  if (absl::Status written = WriteWhole(command.output, trace->chrome_trace_json());
      !written.ok()) {
    if (!existed) std::filesystem::remove(command.output, error);
    return UsageError(std::string(written.message()));
  }
  if (session.json) {
    std::cout << Dump({{"events", trace->events()},
                       {"dropped", trace->dropped()},
                       {"cut_short", trace->cut_short()},
                       {"file", command.output}})
              << "\n";
  } else {
    std::cout << trace->events() << " events written to " << command.output
              << " (open it in ui.perfetto.dev or chrome://tracing)";
    if (trace->dropped() > 0) std::cout << "; " << trace->dropped() << " dropped";
    if (trace->cut_short()) std::cout << "; cut short: turbined began shutting down";
    std::cout << "\n";
  }
  return kOk;
}

ExitCode RunWatch(const Session& session, const CallCommand& command) {
  absl::StatusOr<v1::CallRequest> request = BuildRequest(command);
  if (!request.ok()) return UsageError(request.status().message());
  client::Cancellation cancel;
  CancelOnInterrupt interrupt(&cancel);
  auto print = [&](const client::CallResult& result) {
    PrintResult(session, command, result);
    // Nobody reads any more (e.g. `| head -1`): stop rather than watch into the void.
    return static_cast<bool>(std::cout);
  };
  absl::Status status = session.client->Watch(*request, print, &cancel);
  if (!status.ok()) return ReportRpcError(session, status);
  return kOk;
}

namespace {

// KeyProblem says what is wrong with an input key (empty: nothing). A key is a protocol
// string: sent as other bytes, the daemon would refuse the whole request.
std::string KeyProblem(const std::string& key) {
  return render::IsUtf8(key) ? "" : "an input key is text (UTF-8), not other bytes";
}

// LargeInteger finds an integer above int64's range in `value` (0: none) and where it is,
// as a JSON pointer into `at`: an input's integers are int64, and the daemon would refuse
// the whole batch for it.
uint64_t LargeInteger(const v1::Value& value, std::string* at) {
  if (value.has_uint_value()) return value.uint_value();
  const size_t length = at->size();
  for (int i = 0; i < value.list_value().items_size(); ++i) {
    absl::StrAppend(at, "/", i);
    if (const uint64_t large = LargeInteger(value.list_value().items(i), at)) return large;
    at->resize(length);
  }
  for (const v1::MapEntry& entry : value.map_value().entries()) {
    absl::StrAppend(at, "/", absl::StrReplaceAll(entry.key(), {{"~", "~0"}, {"/", "~1"}}));
    if (const uint64_t large = LargeInteger(entry.value(), at)) return large;
    at->resize(length);
  }
  return 0;
}

// ReportChangeError is ReportRpcError for a request that changes inputs: one that ran out
// of time may still have been applied, and the user must not take the error for a refusal.
ExitCode ReportChangeError(const Session& session, const absl::Status& status) {
  const ExitCode code = ReportRpcError(session, status);
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    std::cerr << "turbine: whether the change was made is not known (`turbine call input.get "
                 "KEY` tells; a longer --timeout-ms waits for the answer)\n";
  }
  return code;
}

}  // namespace

ExitCode RunSet(const Session& session, const std::vector<std::string>& pairs) {
  if (pairs.empty() || pairs.size() % 2 != 0) {
    return UsageError("set takes KEY VALUE pairs: an even number of words");
  }
  std::vector<std::pair<std::string, v1::Value>> inputs;
  for (size_t i = 0; i < pairs.size(); i += 2) {
    if (std::string problem = KeyProblem(pairs[i]); !problem.empty()) return UsageError(problem);
    absl::StatusOr<v1::Value> value = ParseValueArgument(pairs[i + 1], client::ValueUse::kInput);
    if (!value.ok()) {
      return UsageError(absl::StrCat("value of ", pairs[i], ": ", value.status().message()));
    }
    std::string at;
    if (const uint64_t large = LargeInteger(*value, &at)) {
      return UsageError(absl::StrCat("value of ", pairs[i], ": at ", at.empty() ? "/" : at, ": ",
                                     large,
                                     " is above int64's range, which an input's integers "
                                     "are in"));
    }
    inputs.emplace_back(pairs[i], *std::move(value));
  }
  absl::StatusOr<uint32_t> changed = session.client->SetInputs(std::move(inputs));
  if (!changed.ok()) return ReportChangeError(session, changed.status());
  if (session.json) {
    std::cout << Dump({{"changed", *changed}}) << "\n";
  } else {
    std::cout << *changed << (*changed == 1 ? " input" : " inputs") << " changed\n";
  }
  return kOk;
}

ExitCode RunUnset(const Session& session, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    if (std::string problem = KeyProblem(key); !problem.empty()) return UsageError(problem);
  }
  absl::StatusOr<uint32_t> deleted = session.client->DeleteInputs(keys);
  if (!deleted.ok()) return ReportChangeError(session, deleted.status());
  if (session.json) {
    std::cout << Dump({{"deleted", *deleted}}) << "\n";
  } else {
    std::cout << *deleted << (*deleted == 1 ? " input" : " inputs") << " deleted\n";
  }
  return kOk;
}

ExitCode RunStats(const Session& session) {
  absl::StatusOr<v1::StatsReply> stats = session.client->Stats();
  if (!stats.ok()) return ReportRpcError(session, stats.status());
  if (session.json) {
    std::cout << Dump(MessageToJson(*stats)) << "\n";
  } else {
    PrintStats(std::cout, *stats);
  }
  return kOk;
}

ExitCode RunFunctions(const Session& session) {
  absl::StatusOr<std::vector<v1::FunctionInfo>> functions = session.client->ListFunctions();
  if (!functions.ok()) return ReportRpcError(session, functions.status());
  if (session.json) {
    nlohmann::json array = nlohmann::json::array();
    for (const v1::FunctionInfo& function : *functions) array.push_back(MessageToJson(function));
    std::cout << Dump(array) << "\n";
  } else {
    for (const v1::FunctionInfo& function : *functions) {
      std::cout << FormatFunction(function) << "\n";
    }
  }
  return kOk;
}

ExitCode RunFlush(const Session& session) {
  absl::StatusOr<uint64_t> written = session.client->Flush();
  if (!written.ok()) return ReportRpcError(session, written.status());
  if (session.json) {
    std::cout << Dump({{"tasks_written", *written}}) << "\n";
  } else {
    std::cout << *written << (*written == 1 ? " task" : " tasks") << " written\n";
  }
  return kOk;
}

ExitCode RunGc(const Session& session) {
  absl::StatusOr<v1::CollectGarbageReply> gc = CollectGarbageWhileAnswered(session);
  if (!gc.ok()) return ReportRpcError(session, gc.status());
  if (session.json) {  // in this order (a JSON object here is sorted by key)
    std::cout << absl::StrCat(R"({"removed_tasks":)", gc->removed_tasks(), R"(,"bytes_before":)",
                              gc->bytes_before(), R"(,"bytes_after":)", gc->bytes_after(), "}\n");
    return kOk;
  }
  std::cout << "removed " << gc->removed_tasks() << (gc->removed_tasks() == 1 ? " task" : " tasks")
            << " of " << gc->scanned_tasks();
  const std::pair<const char*, uint64_t> reasons[] = {
      {"superseded", gc->superseded()},
      {"not used within the retention", gc->expired()},
      {"over the disk limit", gc->over_limit()},
      {"referring to those", gc->dependent()},
      {"unusable by this build", gc->unusable()}};
  const char* separator = " (";
  for (const auto& [why, count] : reasons) {
    if (count == 0) continue;
    std::cout << separator << count << " " << why;
    separator = ", ";
  }
  std::cout << (separator[0] == ',' ? ")" : "") << "; " << gc->bytes_before() << " -> "
            << gc->bytes_after() << " bytes on disk\n";
  return kOk;
}

namespace {

// WaitUntilReleased waits, up to `timeout`, until no daemon holds the lock of `data_dir`,
// which one lets go of as it exits, after its last snapshot. The Shutdown RPC answers when
// the stop begins: a daemon started on the directory right after `turbine shutdown`
// returned found it still held, and exited 3 (half the time, the README's own restart).
bool WaitUntilReleased(const std::string& data_dir, std::chrono::milliseconds timeout) {
  const std::string path = (std::filesystem::path(data_dir) / "turbined.lock").string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // no lock file: no daemon ever held it
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool released = false;
  for (;;) {
    // Held only for the test: a shared lock is taken only while no daemon has the directory.
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
      ::flock(fd, LOCK_UN);
      released = true;
      break;
    }
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::close(fd);
  return released;
}

}  // namespace

ExitCode RunShutdown(const Session& session) {
  absl::Status status = session.client->Shutdown();
  if (!status.ok()) return ReportRpcError(session, status);
  if (!session.data_dir.empty() && !WaitUntilReleased(session.data_dir, session.timeout)) {
    std::cerr << "turbine: turbined is still stopping after " << session.timeout.count()
              << " ms (--timeout-ms)\n";
  }
  if (session.json) {
    std::cout << Dump({{"shutdown", true}}) << "\n";
  } else {
    std::cout << "turbined is shutting down\n";
  }
  return kOk;
}

ExitCode RunPing(const Session& session) {
  absl::Status status = session.client->Ping();
  if (!status.ok()) return ReportRpcError(session, status);
  std::cout << (session.json ? R"({"status":"SERVING"})" : "SERVING") << "\n";
  return kOk;
}

}  // namespace turbine::cli
