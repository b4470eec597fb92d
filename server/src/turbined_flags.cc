// turbined_flags.cc — turbined's command line and --config file (turbined_flags.h).
#include "turbined_flags.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "turbine/text.h"

namespace turbined {

bool ReadAtMost(const std::string& path, size_t most, std::string* text) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  text->clear();
  char chunk[64 << 10];
  while (text->size() <= most && file.read(chunk, sizeof(chunk)).gcount() > 0) {
    text->append(chunk, static_cast<size_t>(file.gcount()));
  }
  return text->size() <= most;
}

bool ReadToken(const std::string& path, std::string* token) {
  std::string text;
  if (!ReadAtMost(path, 64 << 10, &text)) return false;
  const size_t begin = text.find_first_not_of(" \t\r\n");
  const size_t end = text.find_last_not_of(" \t\r\n");
  *token = begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
  return !token->empty();
}

namespace {

// ParseSize reads a size: plain bytes, or a number with K, M, G or T (powers of 1024; "B"
// or "iB" may follow): "512M", "2G", "1048576". `too_large`, if given, tells a size of that
// form past 2^64 bytes from what is no size.
std::optional<uint64_t> ParseSize(std::string text, bool* too_large = nullptr) {
  if (text.ends_with("iB")) {
    text.resize(text.size() - 2);
  } else if (text.ends_with("B")) {
    text.pop_back();
  }
  int shift = 0;
  if (!text.empty()) {
    const size_t unit = std::string_view("KMGT").find(
        static_cast<char>(std::toupper(static_cast<unsigned char>(text.back()))));
    if (unit != std::string_view::npos) {
      shift = 10 * static_cast<int>(unit + 1);
      text.pop_back();
    }
  }
  uint64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  const bool digits = !text.empty() && end == text.data() + text.size();
  if (digits && (error == std::errc::result_out_of_range || number > (UINT64_MAX >> shift))) {
    if (too_large != nullptr) *too_large = true;
    return std::nullopt;
  }
  if (!digits || error != std::errc()) return std::nullopt;
  return number << shift;
}

// ParseDuration reads a duration: plain seconds, or a number with s, m, h or d: "30d".
// `too_long`, if given, tells a duration of that form past kLongestDuration from what is
// no duration.
// kLongestDuration is the longest duration a flag takes: 100 years. Timers count in
// nanoseconds from the clock's epoch, 64 bits of them (292 years): a longer interval wrapped
// round to the past, and a --gc-interval of 300 years ran passes back to back.
constexpr int64_t kLongestDuration = int64_t{100} * 365 * 86400;

std::optional<std::chrono::seconds> ParseDuration(std::string text, bool* too_long = nullptr) {
  struct Unit {
    char suffix;
    int64_t seconds;
  };
  constexpr Unit kUnits[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  int64_t unit = 1;
  for (const Unit& candidate : kUnits) {
    if (!text.empty() && text.back() == candidate.suffix) {
      unit = candidate.seconds;
      text.pop_back();
      break;
    }
  }
  int64_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  const bool digits = !text.empty() && end == text.data() + text.size() && text[0] != '-';
  if (digits && (error == std::errc::result_out_of_range || number > kLongestDuration / unit)) {
    if (too_long != nullptr) *too_long = true;
    return std::nullopt;
  }
  if (!digits || error != std::errc()) return std::nullopt;
  return std::chrono::seconds(number * unit);
}

// NonNegativeInteger checks a count or a number of milliseconds, an int. (CLI11's
// NonNegativeNumber names its range up to the largest double, in 310 digits.)
CLI::Validator NonNegativeInteger() {
  return CLI::Validator(
      [](std::string& text) {
        int number = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (error == std::errc::result_out_of_range && !text.starts_with("-")) {
          return "'" + text + "' is more than " + std::to_string(INT_MAX);
        }
        if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
            number < 0) {
          return "'" + text + "' is not a non-negative integer";
        }
        return std::string();
      },
      "N");
}

// UnknownConfigKey is the key a config file sets that is no flag, or empty when `error` is
// about something else. CLI11 says only "INI was not able to parse <key>" (and for a
// [section], "<section>.++").
std::string UnknownConfigKey(const CLI::ParseError& error) {
  constexpr std::string_view kPrefix = "INI was not able to parse ";
  const std::string_view message = error.what();
  if (dynamic_cast<const CLI::ConfigError*>(&error) == nullptr || !message.starts_with(kPrefix)) {
    return "";
  }
  std::string key(message.substr(kPrefix.size()));
  if (key.ends_with(".++")) key = "[" + key.substr(0, key.size() - 3) + "]";
  return key;
}

// ConfigSyntaxError finds what CLI11's lenient reader of config files lets through, or
// reports as something else: an array that does not end on its line (`listen = ["a", "b"`
// was read as the two addresses; CLI11 reads no array over several lines), a ']' with no
// '[', a quoted string that does not end, a key set twice, but for `listen` on consecutive
// lines (CLI11 said only `--memory-limit: At Most 1 required but received 2`, or kept one
// `listen` address of two). Empty when there is none, or when the file cannot be read
// (CLI11 reports that).
std::string ConfigSyntaxError(const std::string& path) {
  // Read up to a bound first: CLI11 would read /dev/zero until memory ran out.
  std::string text;
  if (!ReadAtMost(path, 1 << 20, &text)) {
    if (!std::ifstream(path)) return "";  // CLI11 says it cannot be read
    return "larger than 1 MiB (is it a config file?)";
  }
  std::istringstream in(text);
  std::string line;
  std::string section;
  std::map<std::string, int> first_set;  // section-qualified key -> its line
  std::string last_key;                  // of the line before, if it set one
  for (int number = 1; std::getline(in, line); ++number) {
    // Not text (a binary file given by mistake): CLI11 said only "INI was not able to
    // parse", naming neither the file nor the line.
    if (line.find('\0') != std::string::npos || !turbine::IsValidUtf8(line)) {
      return "line " + std::to_string(number) + ": not UTF-8 text (is it a config file?)";
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    if (line[first] == '[') {  // a section, or a table ([[name]] too); [default] is the top
      const size_t begin = line.find_first_not_of("[ \t", first);
      const size_t end = line.find_first_of("] \t", begin);
      section = begin == std::string::npos ? "" : line.substr(begin, end - begin);
      std::string lower = section;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "default") section.clear();
      last_key.clear();
      continue;
    }
    if (const size_t equals = line.find('=');
        equals != std::string::npos && line[first] != '#' && line[first] != ';') {
      std::string key = line.substr(first, equals - first);
      key.erase(key.find_last_not_of(" \t\"'") + 1);
      key.erase(0, key.find_first_not_of("\"'"));
      const std::string qualified = section.empty() ? key : section + "." + key;
      // CLI11 takes a key repeated on the next line as more values of it: addresses to
      // listen on (the one flag that takes several); for anything else it said only
      // "--memory-limit: At Most 1 required but received 2".
      const bool more_values = qualified == last_key && key == "listen";
      last_key = qualified;
      const auto [at, inserted] = first_set.emplace(qualified, number);
      if (!inserted && !more_values) {
        return "line " + std::to_string(number) + ": " + qualified +
               " is set twice (first on line " + std::to_string(at->second) + ")" +
               (key == "listen" ? "; several addresses go in one array: listen = [\"A\", \"B\"]"
                                : "");
      }
    } else if (line[first] != '#' && line[first] != ';') {
      last_key.clear();
    }
    char quote = 0;
    bool value_starts = false;  // a quote here opens a string (INI values may hold one)
    int depth = 0;
    for (char c : line) {
      if (quote != 0) {
        // CLI11 cuts a line at a '#' even inside quotes, and keeps a TOML escape as written:
        // `data-dir = "/srv/a#b"` made a directory named `"/srv/a`, and "q\"x" one named
        // `q\"x`. Refused, as a value that would not be what the file says.
        if (c == '#') {
          return "line " + std::to_string(number) +
                 ": a '#' inside a quoted value (the config reader takes it for a comment; "
                 "give this setting as a flag)";
        }
        if (c == '\\' && quote == '"') {
          return "line " + std::to_string(number) +
                 ": a backslash inside a double-quoted value (escapes are not read: write "
                 "the value in single quotes, where a backslash is itself)";
        }
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '#' || c == ';') break;  // a comment to the end of the line
      if ((c == '"' || c == '\'') && value_starts) quote = c;
      if (c == '[') ++depth;
      if (c == ']' && --depth < 0) return "line " + std::to_string(number) + ": a ']' with no '['";
      if (c != ' ' && c != '\t') value_starts = c == '=' || c == '[' || c == ',';
    }
    if (quote != 0) return "line " + std::to_string(number) + ": a quoted string that does not end";
    if (depth > 0) {
      return "line " + std::to_string(number) +
             ": an array that does not end on its line (write it on one line)";
    }
  }
  return "";
}

}  // namespace

namespace {
int Parse(int argc, char** argv, Flags* flags, bool config_values_only);
}  // namespace

int ParseFlags(int argc, char** argv, Flags* flags) {
  return Parse(argc, argv, flags, /*config_values_only=*/false);
}

namespace {

// Parse is ParseFlags. `config_values_only`: argv is the program and --config FILE alone,
// read to check the file's values, and what one setting needs of another is not checked
// (the command line may give it).
int Parse(int argc, char** argv, Flags* flags, bool config_values_only) {
  CLI::App app{"turbined: the Turbine daemon, a persistent incremental computation service"};
  CLI::Option* config =
      app.set_config("--config", "",
                     "read settings from this TOML or INI file: keys are the flags' names "
                     "(data-dir = \"/var/lib/turbine\"); flags on the command line win")
          ->type_name("FILE");
  // A misspelt setting is an error, not silently the default.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.set_version_flag("--version", std::string("turbined ") + TURBINE_VERSION);
  turbine::server::ServerOptions& options = flags->server;
  int snapshot_interval_ms = 1000;
  std::string& log_level = flags->log_level;
  std::string& token_file = flags->token_file;
  app.add_option("--data-dir", options.data_dir, "cache and socket directory")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](const std::string& dir) {
            return dir.empty() ? std::string("the data directory must be named") : std::string();
          },
          "DIR"));
  app.add_option("--listen", options.listen,
                 "address to serve: unix:PATH or HOST:PORT, repeatable "
                 "(default unix:<data-dir>/turbined.sock)");
  app.add_option("--workers", options.workers,
                 "engine worker threads (0: one per core; at most 1024)")
      ->check(NonNegativeInteger())
      ->capture_default_str();
  app.add_option("--snapshot-interval-ms", snapshot_interval_ms,
                 "write changed results to disk this often (0: only on flush and shutdown)")
      ->check(NonNegativeInteger())
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--auth-token-file", token_file,
                 "require every call to carry this file's token (authorization: Bearer ...)")
      ->check(CLI::ExistingFile);
  // A byte count may be given as a size ("8M"): checked as given, then read as its bytes
  // (CLI11's range check would name the bytes: "Value 2147483648 not in range" for 2G).
  const auto bytes_in = [](uint64_t least, uint64_t most) {
    return CLI::Validator(
        [least, most](std::string& text) {
          const std::optional<uint64_t> bytes = ParseSize(text);
          if (!bytes.has_value()) return "'" + text + "' is not a size: 16M, 1G or bytes";
          if (*bytes < least || *bytes > most) {
            return "'" + text + "' is not from " + std::to_string(least) + " to " +
                   std::to_string(most) + " bytes";
          }
          text = std::to_string(*bytes);
          return std::string();
        },
        "SIZE in [" + std::to_string(least) + " - " + std::to_string(most) + "]");
  };
  app.add_option("--max-message-bytes", options.max_message_bytes,
                 "largest request or reply (bytes, or 16M); larger requests fail with "
                 "RESOURCE_EXHAUSTED")
      ->transform(bytes_in(1024, 1 << 30))
      ->capture_default_str();
  app.add_option("--tls-cert", options.tls_cert_file, "PEM certificate for TCP listeners")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls_key_file, "PEM private key for TCP listeners")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", options.tls_client_ca_file,
                 "mutual TLS: TCP clients must present a certificate signed by a CA in this "
                 "PEM file")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", options.insecure,
               "allow plain-text TCP, and metrics, on a non-loopback address (a trusted "
               "network only)");
  app.add_option("--metrics-listen", options.metrics_listen,
                 "serve Prometheus metrics at http://HOST:PORT/metrics (IPv4 or localhost; "
                 "port 0 picks one; off by default)");
  app.add_option("--http-listen", options.http_listen,
                 "serve the status page at http://HOST:PORT/ (IPv4 or localhost; port 0 picks "
                 "one; off by default; asks for --auth-token-file's token too)");
  app.add_option("--trace-file", options.trace_file,
                 "trace every execution, snapshot and GC pass from start to shutdown into "
                 "this file (Chrome Trace Event JSON, for Perfetto; off by default)");
  app.add_option("--max-connections", options.max_connections,
                 "client connections open at once; more wait until one closes (0: half the "
                 "open-file limit)")
      ->check(NonNegativeInteger())
      ->capture_default_str();
  int max_connection_idle_ms = static_cast<int>(options.max_connection_idle.count());
  app.add_option("--max-connection-idle-ms", max_connection_idle_ms,
                 "close a connection with no call in flight for this long (0: never)")
      ->check(NonNegativeInteger())
      ->capture_default_str();
  app.add_option("--stream-reply-buffer-bytes", options.stream_reply_buffer_bytes,
                 "a CallStream stops reading requests while this many bytes of replies wait "
                 "for its client (bytes, or 16M)")
      ->transform(bytes_in(1, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--reply-buffer-bytes", options.reply_buffer_bytes,
                 "... or while this many wait for all clients together")
      ->transform(bytes_in(1, uint64_t{1} << 40))
      ->capture_default_str();
  // Garbage collection of the store. Sizes and durations are checked as they are read.
  const CLI::Validator size(
      [](std::string& text) {
        bool too_large = false;
        if (ParseSize(text, &too_large)) return std::string();
        return too_large ? "'" + text + "' is more than 2^64 bytes"
                         : "'" + text + "' is not a size: 512M, 2G or bytes";
      },
      "SIZE");
  const CLI::Validator duration(
      [](std::string& text) {
        bool too_long = false;
        if (ParseDuration(text, &too_long)) return std::string();
        return too_long ? "'" + text + "' is longer than turbined counts (100 years: 36500d)"
                        : "'" + text + "' is not a duration: 30d, 12h, 45m, 90s or seconds";
      },
      "DURATION");
  std::string retention = "30d";
  std::string disk_limit = "0";
  std::string gc_interval = "1h";
  std::string settle_delay = "30s";
  std::string stop_timeout = "60s";
  app.add_option("--retention", retention,
                 "remove cached results not used for this long (counted in whole days)")
      ->check(duration)
      ->capture_default_str();
  app.add_option("--disk-limit", disk_limit,
                 "keep the store under this size by removing the least recently used "
                 "results (0: no limit; inputs that are set are never removed)")
      ->check(size)
      ->capture_default_str();
  std::string memory_limit = "0";
  app.add_option("--memory-limit", memory_limit,
                 "keep the daemon's resident memory under this size: the store's caches are "
                 "sized from it, over it cached results leave memory for the store, and a "
                 "burst of new calls waits for snapshots (0: a quarter of physical memory, at "
                 "most 8G)")
      ->check(size)
      ->capture_default_str();
  app.add_option("--gc-interval", gc_interval,
                 "collect garbage this often when idle, the first time a minute after start "
                 "or one interval, if that is shorter (0: only on `turbine gc`, --disk-limit "
                 "too)")
      ->check(duration)
      ->capture_default_str();
  app.add_option("--settle-delay", settle_delay,
                 "idle this long, write what the store holds in memory to its files, so a "
                 "crash or kill -9 then has little log to replay (0: never)")
      ->check(duration)
      ->capture_default_str();
  app.add_option("--stop-timeout", stop_timeout,
                 "a stop (SIGTERM, SIGINT, SIGHUP, the Shutdown RPC) not ended this long after it "
                 "began exits at once, without the last snapshot, exit code 4 (0: never)")
      ->check(duration)
      ->capture_default_str();
  CLI::Option* shared_cache =
      app.add_option("--shared-cache", flags->shared_cache,
                     "share results with other daemons through Redis Cluster (or one Redis): "
                     "redis://HOST:PORT[,HOST:PORT...], seed nodes")
          ->type_name("URL")
          // Given empty (an unset variable in a template), sharing would be off unsaid,
          // and the other --shared-cache-* settings ignored.
          ->check(CLI::Validator(
              [](std::string& url) {
                return url.empty() ? std::string(
                                         "an empty URL: give redis://HOST:PORT, or leave "
                                         "--shared-cache out")
                                   : std::string();
              },
              "URL"));
  // The settings of the shared cache mean nothing without one: given alone, a mistake.
  app.add_option("--shared-cache-namespace", flags->shared_cache_namespace,
                 "only daemons with the same namespace see each other's results")
      ->check(CLI::Validator(
          [](std::string& name) {
            // In every key: a brace would make a Redis Cluster hash tag (all of the
            // namespace on one node), a space or a control byte splits the log lines.
            const bool printable = std::all_of(name.begin(), name.end(), [](char c) {
              return c > ' ' && c < 0x7F && c != '{' && c != '}';
            });
            return !name.empty() && printable
                       ? std::string()
                       : "'" + name + "' is not a namespace: printable ASCII, no spaces or braces";
          },
          "NAME"))
      ->capture_default_str()
      ->needs(shared_cache);
  app.add_option("--shared-cache-mode", flags->shared_cache_mode,
                 "read: adopt verified results; readwrite: also publish what this daemon "
                 "executes")
      ->check(CLI::IsMember({"read", "readwrite"}))
      ->capture_default_str()
      ->needs(shared_cache);
  CLI::Option* password_file =
      app.add_option("--shared-cache-password-file", flags->shared_cache_password_file,
                     "file holding the Redis password (AUTH)")
          ->check(CLI::ExistingFile)
          ->needs(shared_cache);
  app.add_option("--shared-cache-user", flags->shared_cache_user,
                 "Redis ACL user to authenticate as (with --shared-cache-password-file)")
      ->needs(password_file);
  app.add_option("--shared-cache-timeout-ms", flags->shared_cache_timeout_ms,
                 "longest a shared cache lookup may take; slower is a miss, and a dead "
                 "cluster is retried once a second")
      ->check(CLI::Range(1, 60'000))
      ->capture_default_str()
      ->needs(shared_cache);
  // Before CLI11 reads it, which would report what follows from a syntax error instead.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string path;
    if (arg == "--config" && i + 1 < argc) path = argv[i + 1];
    if (arg.starts_with("--config=")) path = std::string(arg.substr(9));
    if (path.empty()) continue;
    if (const std::string error = ConfigSyntaxError(path); !error.empty()) {
      std::fprintf(stderr, "the config file %s cannot be read: %s\n", path.c_str(), error.c_str());
      return kExitBadConfig;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (config_values_only && (dynamic_cast<const CLI::RequiresError*>(&error) != nullptr ||
                               dynamic_cast<const CLI::ExcludesError*>(&error) != nullptr ||
                               dynamic_cast<const CLI::RequiredError*>(&error) != nullptr)) {
      return -1;  // the command line may give what the setting needs
    }
    if (const std::string key = UnknownConfigKey(error); !key.empty()) {
      const bool sectioned = key.starts_with("[") || key.find('.') != std::string::npos;
      std::fprintf(stderr, "the config file %s sets %s, which is not a setting of turbined (%s)\n",
                   config->as<std::string>().c_str(), key.c_str(),
                   sectioned ? "its settings are top-level keys, in no [section]"
                             : "a misspelt flag name? turbined --help lists them");
      return kExitBadConfig;
    }
    // A bad value from the file: CLI11 names the flag as if it were given on the command
    // line, and the user looks there.
    const std::string message = error.what();
    if (config->count() > 0 && message.starts_with("--") &&
        message.find(':') != std::string::npos) {
      const std::string flag = message.substr(0, message.find(':'));
      bool on_command_line = false;
      for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        on_command_line = on_command_line || arg == flag || arg.starts_with(flag + "=");
      }
      if (!on_command_line) {
        std::fprintf(stderr, "the config file %s: %s\n", config->as<std::string>().c_str(),
                     message.c_str());
        return kExitBadConfig;
      }
    }
    // --help exits 0; a bad flag or config file is one code, which a service manager can
    // be told not to restart on.
    return app.exit(error) == 0 ? 0 : kExitBadConfig;
  }

  options.snapshot_interval = std::chrono::milliseconds(snapshot_interval_ms);
  options.max_connection_idle = std::chrono::milliseconds(max_connection_idle_ms);
  options.gc.retention = *ParseDuration(retention);
  options.gc.disk_limit = *ParseSize(disk_limit);
  options.gc.interval = *ParseDuration(gc_interval);
  options.settle_delay = *ParseDuration(settle_delay);
  flags->stop_timeout = *ParseDuration(stop_timeout);
  options.memory_limit = *ParseSize(memory_limit);

  // CLI11 checks only the value that wins: a bad `workers = "abc"` under `--workers 2`
  // started, and stopped the next start without the flag (a service manager's restart).
  // The file is read again alone (after the command line, whose own errors come first).
  if (!config_values_only && config->count() > 0 && argc > 3) {
    std::string program = argv[0];
    std::string flag = "--config";
    std::string path = config->as<std::string>();
    std::vector<char*> alone = {program.data(), flag.data(), path.data(), nullptr};
    Flags scratch;
    if (const int code = Parse(3, alone.data(), &scratch, true); code >= 0) return code;
  }
  return -1;
}

}  // namespace

}  // namespace turbined
