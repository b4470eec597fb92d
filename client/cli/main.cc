// turbine — the command-line client of turbined. See `turbine --help`.
#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <grpc/support/log.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>

#include "arguments.h"
#include "commands.h"
#include "exit_codes.h"
#include "turbine/client/client.h"

namespace turbine::cli {
namespace {

constexpr char kFooter[] = R"(Arguments and values are JSON: 30, 1.5, true, null, '"text"', '[1,2]',
'{"a":1}', '{"$ref":"12"}' (a task reference), '{"$bytes":"aGk="}' (base64 bytes),
'{"$double":"NaN"}' ("Infinity", "-Infinity": numbers JSON has not).
A bare word that is not JSON is a string: `turbine call input.get mykey`.

Exit codes:
  0  ok
  1  the function returned an error (message on stderr)
  2  usage error: bad command line, bad JSON argument, unreadable or unusable token or
     TLS file
  3  cannot reach the daemon (not running, wrong address, not serving yet, TLS handshake
     failed), or lost it before it answered
  4  the daemon refused the request (NOT_FOUND, INVALID_ARGUMENT, UNAUTHENTICATED, ...):
     "turbine: <CODE>: <message>" on stderr)";

// WholeNumberFrom checks a count or a duration given in whole units, in decimal digits.
// CLI11's Range says "Value abc not in range 1 to 3600" of text that is no number at all,
// and of 1.5. A leading zero is refused: CLI11 then reads the text as C does, 010 as 8.
CLI::Validator WholeNumberFrom(int64_t low, int64_t high) {
  return CLI::Validator(
      [low, high](std::string& text) {
        int64_t number = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
            (text.size() > 1 && text[0] == '0') || number < low || number > high) {
          return absl::StrCat("'", text, "' is not a whole number from ", low, " to ", high);
        }
        return std::string();
      },
      "N");
}

struct GlobalOptions {
  std::string connect;
  std::string data_dir = client::kDefaultDataDir;
  bool json = false;
  std::string token_file;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  int timeout_ms = static_cast<int>(client::kDefaultDeadline.count());
  bool wait = false;
};

// ShieldJsonArrays prefixes a space to words like [1,2]: CLI11 splits a word in brackets
// into several values for a vector option (and offers no switch for it), while JSON
// ignores the space.
std::vector<std::string> ShieldJsonArrays(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::string& arg : args) {
    if (arg.size() >= 2 && arg.front() == '[' && arg.back() == ']') arg.insert(0, " ");
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them last to first
  return args;
}

void AddCallOptions(CLI::App* command, CallCommand* call) {
  command->add_option("function", call->function, "Function name, e.g. demo.fib")->required();
  command->add_option("args", call->args, "Arguments, each JSON or a bare word (a string)");
  command->add_option("--this", call->this_ref,
                      R"(Receiver of a method: 12, 12/Type/3 or {"$ref":"12"})");
  command->add_flag("--raw", call->raw,
                    "Print a bytes value byte for byte (e.g. a file's content) and a string as a "
                    "line of text, not as JSON");
}

// CommandLine is what the command line asks for: options and the command to run.
struct CommandLine {
  GlobalOptions global;
  CallCommand call;
  GraphCommand graph;
  WhyCommand why;
  TraceCommand trace;
  std::vector<std::string> pairs;
  std::function<ExitCode(const Session&)> run;
};

void AddGlobalOptions(CLI::App& app, GlobalOptions* global) {
  app.add_option("--connect", global->connect,
                 "Daemon address, unix:/path/turbined.sock or host:port "
                 "(default: unix:<data-dir>/turbined.sock)");
  app.add_option("--data-dir", global->data_dir, "Data directory of the daemon")
      ->capture_default_str();
  app.add_flag("--json", global->json, "Print machine-readable JSON");
  app.add_option("--token-file", global->token_file,
                 "File holding the daemon's auth token (default: $TURBINE_TOKEN_FILE)");
  app.add_option("--tls-ca", global->tls_ca,
                 "Connect with TLS; the daemon's certificate must be signed by a CA in this PEM "
                 "file (default: $TURBINE_TLS_CA)");
  app.add_option("--tls-cert", global->tls_cert,
                 "Client certificate (PEM) for a daemon that requires one; with --tls-key "
                 "(default: $TURBINE_TLS_CERT)");
  app.add_option("--tls-key", global->tls_key,
                 "Private key (PEM) of --tls-cert (default: $TURBINE_TLS_KEY)");
  app.add_option("--tls-server-name", global->tls_server_name,
                 "Name the daemon's certificate must carry, if not the host connected to "
                 "(default: $TURBINE_TLS_SERVER_NAME)");
  app.add_option("--timeout-ms", global->timeout_ms, "Deadline of each request")
      ->check(WholeNumberFrom(1, std::numeric_limits<int>::max()))
      ->capture_default_str();
  app.add_flag("--wait", global->wait,
               "Wait for the daemon (up to --timeout-ms) instead of failing at once when it "
               "cannot be reached, e.g. while it starts");
}

// AddCommands adds the subcommands; parsing one sets line->run. The callbacks hold `line`,
// which outlives the parse and the run.
void AddCommands(CLI::App& app, CommandLine* line) {
  CLI::App* call_command = app.add_subcommand("call", "Call a function and print its value");
  AddCallOptions(call_command, &line->call);
  call_command->callback(
      [line] { line->run = [line](const Session& s) { return RunCall(s, line->call); }; });

  CLI::App* graph_command = app.add_subcommand(
      "graph", "Print what a call's task depends on (its dependency cone), as the daemon holds it");
  graph_command->add_option("function", line->graph.call.function, "Function name")->required();
  graph_command->add_option("args", line->graph.call.args,
                            "Arguments, each JSON or a bare word (a string)");
  graph_command->add_option("--this", line->graph.call.this_ref, "Receiver of a method");
  graph_command->add_option("--depth", line->graph.depth,
                            "Follow dependencies this many edges deep (default: all)");
  graph_command->add_option("--format", line->graph.format,
                            "dot (the default), json or svg (laid out by Graphviz)");
  graph_command->add_option("-o,--output", line->graph.output, "Write to this file");
  graph_command->callback(
      [line] { line->run = [line](const Session& s) { return RunGraph(s, line->graph); }; });

  CLI::App* why_command = app.add_subcommand(
      "why", "Explain why a call's task holds its current value, down to the root causes");
  why_command->add_option("function", line->why.call.function, "Function name")->required();
  why_command->add_option("args", line->why.call.args,
                          "Arguments, each JSON or a bare word (a string)");
  why_command->add_option("--this", line->why.call.this_ref, "Receiver of a method");
  why_command
      ->add_option("--max-steps", line->why.max_steps,
                   "Tasks to explain at most (default: the daemon's, 64)")
      // Not PositiveNumber: it said "Value 0 not in range 0.000000 to" 300 digits.
      ->check(WholeNumberFrom(1, std::numeric_limits<uint32_t>::max()));
  why_command->callback(
      [line] { line->run = [line](const Session& s) { return RunWhy(s, line->why); }; });

  CLI::App* trace_command = app.add_subcommand(
      "trace", "Record what the daemon executes for a while, as a Chrome trace (Perfetto)");
  trace_command->add_option("--seconds", line->trace.seconds, "How long to record")
      ->check(WholeNumberFrom(1, 3600))
      ->capture_default_str();
  trace_command->add_option("-o,--output", line->trace.output, "Where to write the trace")
      ->capture_default_str();
  trace_command->callback(
      [line] { line->run = [line](const Session& s) { return RunTrace(s, line->trace); }; });

  CLI::App* set_command = app.add_subcommand("set", "Set inputs atomically: KEY VALUE ...");
  set_command->add_option("pairs", line->pairs, "KEY VALUE pairs; values are JSON or bare words")
      ->required();
  set_command->callback(
      [line] { line->run = [line](const Session& s) { return RunSet(s, line->pairs); }; });

  CLI::App* unset_command =
      app.add_subcommand("unset", "Delete inputs atomically: KEY ... (readers see them unset)");
  unset_command->add_option("keys", line->pairs, "input keys")->required();
  unset_command->callback(
      [line] { line->run = [line](const Session& s) { return RunUnset(s, line->pairs); }; });

  CLI::App* watch_command =
      app.add_subcommand("watch", "Print a call's value, then each new value (Ctrl-C ends)");
  AddCallOptions(watch_command, &line->call);
  watch_command->callback(
      [line] { line->run = [line](const Session& s) { return RunWatch(s, line->call); }; });

  const std::pair<const char*, const char*> kSimple[] = {
      {"stats", "Print the daemon's statistics"},
      {"functions", "List the functions the daemon serves"},
      {"flush", "Write a snapshot of the cache now"},
      {"gc", "Collect the cache's garbage now and print what was removed"},
      {"shutdown", "Stop the daemon gracefully"},
      {"ping", "Check that the daemon serves (prints SERVING)"},
  };
  const std::function<ExitCode(const Session&)> kRuns[] = {RunStats, RunFunctions, RunFlush,
                                                           RunGc,    RunShutdown,  RunPing};
  for (size_t i = 0; i < std::size(kSimple); ++i) {
    app.add_subcommand(kSimple[i].first, kSimple[i].second)->callback([line, run = kRuns[i]] {
      line->run = run;
    });
  }
}

// CommandNames lists the subcommands, for a message.
std::string CommandNames(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(command->get_name());
  }
  return absl::StrJoin(names, ", ");
}

// NoCommand explains a command line that names no command, which CLI11 only calls "A
// subcommand is required" even when a word in it is a mistyped command.
ExitCode NoCommand(CLI::App& app) {
  const std::vector<std::string> unexpected = app.remaining();
  std::cerr << "turbine: ";
  if (unexpected.empty()) {
    std::cerr << "a command is required";
  } else if (unexpected.front().starts_with("-")) {
    std::cerr << "unknown option " << unexpected.front() << ", and no command";
  } else {
    std::cerr << "unknown command '" << unexpected.front() << "'";
  }
  std::cerr << "; the commands are " << CommandNames(app) << " (turbine --help says more)\n";
  return kUsage;
}

// UnknownOption is the first word CLI11 left over that looks like an option ("-x", "--x",
// not a negative number, not the `--` that ends options), or "".
std::string UnknownOption(const CLI::App& app) {
  std::vector<const CLI::App*> apps = {&app};
  for (const CLI::App* command : app.get_subcommands()) apps.push_back(command);
  for (const CLI::App* each : apps) {
    for (const std::string& word : each->remaining()) {
      if (word.size() >= 2 && word != "--" && word[0] == '-' &&
          !std::isdigit(static_cast<unsigned char>(word[1])) && word[1] != '.') {
        return word;
      }
    }
  }
  return "";
}

// ComesBefore tells whether `word` is in `argv` before `command` (then an option that word
// is does not belong to the command).
bool ComesBefore(int argc, char** argv, const std::string& word, const std::string& command) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == command) return false;
    if (argv[i] == word) return true;
  }
  return false;
}

// NamesAGlobalOption: CLI11's error text names an option of the program's own (not of
// the command), whose help is the program's.
bool NamesAGlobalOption(CLI::App& app, const std::string& error) {
  for (size_t at = error.find("--"); at != std::string::npos; at = error.find("--", at + 2)) {
    const size_t end = error.find_first_of(" :=,", at);
    const std::string name = error.substr(at, end == std::string::npos ? end : end - at);
    if (app.get_option_no_throw(name) != nullptr) return true;
  }
  return false;
}

// FromEnvironment fills an option not given on the command line from `variable`.
void FromEnvironment(std::string& option, const char* variable) {
  if (!option.empty()) return;
  if (const char* from_env = std::getenv(variable)) option = from_env;
}

// ConnectOptionsFrom turns the global options (and $TURBINE_TOKEN_FILE, $TURBINE_TLS_*)
// into how to reach the daemon. Any TLS setting means TLS.
absl::StatusOr<client::ConnectOptions> ConnectOptionsFrom(GlobalOptions& global) {
  client::ConnectOptions options;
  if (global.connect.empty()) {
    // The socket's address is absolute: a relative data dir in a directory that was
    // removed has none.
    if (global.data_dir.empty()) {
      return absl::InvalidArgumentError("the data directory must be named (--data-dir)");
    }
    std::error_code error;
    (void)std::filesystem::absolute(global.data_dir, error);
    if (error) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot use data directory ", global.data_dir,
          ": the working directory it is relative to cannot be read (", error.message(), ")"));
    }
  }
  options.address =
      global.connect.empty() ? client::DefaultAddress(global.data_dir) : global.connect;
  options.deadline = std::chrono::milliseconds(global.timeout_ms);
  options.wait_for_ready = global.wait;
  // The CLI takes any reply the daemon sends: the daemon's own --max-message-bytes bounds
  // them, and a user who raised it for a large trace or result should not meet a second
  // limit here.
  options.max_message_bytes = std::numeric_limits<int>::max();
  FromEnvironment(global.token_file, "TURBINE_TOKEN_FILE");
  FromEnvironment(global.tls_ca, "TURBINE_TLS_CA");
  FromEnvironment(global.tls_cert, "TURBINE_TLS_CERT");
  FromEnvironment(global.tls_key, "TURBINE_TLS_KEY");
  FromEnvironment(global.tls_server_name, "TURBINE_TLS_SERVER_NAME");
  if (!global.tls_ca.empty() || !global.tls_cert.empty() || !global.tls_key.empty() ||
      !global.tls_server_name.empty()) {
    options.tls = client::TlsOptions{.ca_file = global.tls_ca,
                                     .cert_file = global.tls_cert,
                                     .key_file = global.tls_key,
                                     .server_name = global.tls_server_name};
  }
  if (!global.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(global.token_file);
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
  }
  return options;
}

// QuietGrpc keeps gRPC's own log lines (a failed handshake logs one) off stderr, where the
// CLI reports every failure itself; GRPC_VERBOSITY in the environment brings them back.
void QuietGrpc() {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
}

// StartCommand is how to start the daemon this command meant: a data dir's own socket
// (unix:DIR/turbined.sock, as --connect gives it too) is that data dir's daemon.
std::string StartCommand(const GlobalOptions& global) {
  if (global.connect.empty()) return "turbined --data-dir " + global.data_dir;
  constexpr std::string_view kScheme = "unix:";
  constexpr std::string_view kSocket = "/turbined.sock";
  const std::string_view connect = global.connect;
  if (connect.starts_with(kScheme) && connect.ends_with(kSocket) &&
      connect.size() > kScheme.size() + kSocket.size()) {
    return "turbined --data-dir " +
           std::string(
               connect.substr(kScheme.size(), connect.size() - kScheme.size() - kSocket.size()));
  }
  return "turbined --listen " + global.connect;
}

int Main(int argc, char** argv) {
  QuietGrpc();
  CLI::App app{"turbine — call and manage turbined, the Turbine daemon"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  app.set_version_flag("--version", std::string("turbine ") + TURBINE_VERSION);
  CommandLine line;
  AddGlobalOptions(app, &line.global);
  AddCommands(app, &line);
  try {
    app.name(argv[0]);
    std::vector<std::string> args = ShieldJsonArrays(argc, argv);
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      if (app.get_subcommands().empty()) return NoCommand(app);
      // CLI11 reports a missing argument before an option it does not know (the option
      // falls through to the global ones): `unset --bogus` said "keys is required".
      if (const std::string unknown = UnknownOption(app); !unknown.empty()) {
        const std::string command = app.get_subcommands().front()->get_name();
        if (ComesBefore(argc, argv, unknown, command)) {
          std::cerr << "turbine: unknown option " << unknown << " (turbine --help says more)\n";
        } else {
          std::cerr << "turbine: unknown option " << unknown << " for '" << command
                    << "' (turbine " << command << " --help says more)\n";
        }
        return kUsage;
      }
      // A missing argument, said as the CLI's other errors are.
      const std::string command = app.get_subcommands().front()->get_name();
      std::cerr << "turbine: " << command << ": " << e.what() << " (turbine " << command
                << " --help says more)\n";
      return kUsage;
    }
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e) == 0 ? kOk : kUsage;  // --help
    }
    // Said as the CLI's other errors are (CLI11's own words lack the program's name), with
    // the help of the command whose option it was.
    std::string help = "turbine --help";
    if (!app.get_subcommands().empty() && !NamesAGlobalOption(app, e.what())) {
      help = "turbine " + app.get_subcommands().front()->get_name() + " --help";
    }
    std::cerr << "turbine: " << e.what() << " (" << help << " says more)\n";
    return kUsage;
  }

  const GlobalOptions& global = line.global;
  absl::StatusOr<client::ConnectOptions> options = ConnectOptionsFrom(line.global);
  absl::StatusOr<std::unique_ptr<client::Client>> client =
      options.ok() ? client::Client::Connect(*options)
                   : absl::StatusOr<std::unique_ptr<client::Client>>(options.status());
  if (!client.ok()) {
    std::cerr << "turbine: " << client.status().message() << "\n";
    return kUsage;
  }
  Session session{.client = client->get(),
                  .json = global.json,
                  .address = options->address,
                  .start_command = StartCommand(global),
                  .data_dir = global.connect.empty() ? global.data_dir : "",
                  .timeout = std::chrono::milliseconds(global.timeout_ms)};
  return line.run(session);
}

}  // namespace
}  // namespace turbine::cli

int main(int argc, char** argv) { return turbine::cli::Main(argc, argv); }
