// turbined — the Turbine daemon.
//
//   turbined [--config FILE] [--data-dir DIR] [--listen ADDR]... [--workers N]
//            [--snapshot-interval-ms N] [--log-level LEVEL] [--auth-token-file F]
//            [--max-message-bytes SIZE] [--tls-cert F --tls-key F [--tls-client-ca F]]
//            [--insecure]
//            [--metrics-listen HOST:PORT] [--http-listen HOST:PORT] [--trace-file PATH]
//            [--max-connections N] [--max-connection-idle-ms N]
//            [--stream-reply-buffer-bytes SIZE] [--reply-buffer-bytes SIZE]
//            [--retention DURATION] [--disk-limit SIZE] [--gc-interval DURATION]
//            [--settle-delay DURATION] [--stop-timeout DURATION]
//            [--shared-cache redis://HOST:PORT[,...] [--shared-cache-namespace NAME]
//             [--shared-cache-mode read|readwrite] [--shared-cache-user USER]
//             [--shared-cache-password-file F] [--shared-cache-timeout-ms N]]
//            [--memory-limit SIZE]
//
// Every flag can come from the --config file instead (TOML or INI, keys named like the
// flags; deploy/turbined.toml lists them all); a flag on the command line wins.
//
// Logs one line "turbined ready on <addr>" once it serves (after "turbined metrics on
// http://<addr>/metrics" when metrics are on, and "turbined status page on http://<addr>/"
// when the page is). SIGTERM, SIGINT or SIGHUP (or the Shutdown RPC) stop
// it: no new calls, in-flight ones finish, the cache is flushed, exit 0.
//
// Exit codes: 0 stopped cleanly, 1 could not start (store, address in use), 2 a bad flag or
// config file, 3 another turbined serves the data dir, 4 a stop cut short (--stop-timeout
// after it began, or by a stop signal while stopping).
#include <absl/cleanup/cleanup.h>
#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bearer_token.h"
#include "turbine/server/server.h"
#include "turbine/shared/redis_tier.h"
#include "turbined_flags.h"

namespace {

using turbined::Flags;
using turbined::kExitBadConfig;
using turbined::kExitCannotStart;
using turbined::kExitDataDirInUse;
using turbined::kExitStopCutShort;
using turbined::ParseFlags;
using turbined::ReadToken;

// ConnectSharedCache fills `options` from the --shared-cache flags; an error is a bad
// setting. A cluster that does not answer yet is no error: lookups miss until it does.
absl::Status ConnectSharedCache(const Flags& flags, turbine::SharedTierOptions* options) {
  if (flags.shared_cache.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> seeds =
      turbine::shared::ParseRedisUrl(flags.shared_cache);
  if (!seeds.ok()) return seeds.status();
  std::string password;
  if (!flags.shared_cache_password_file.empty() &&
      !ReadToken(flags.shared_cache_password_file, &password)) {
    return absl::InvalidArgumentError("the password file " + flags.shared_cache_password_file +
                                      " is empty, unreadable or larger than 64 KiB");
  }
  // One line, as the token file: a second line is a file that holds something else too, and
  // sent whole it only reads as a wrong password.
  if (password.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError("the password file " + flags.shared_cache_password_file +
                                      " holds more than one line: a password is one line");
  }
  absl::StatusOr<std::shared_ptr<turbine::shared::RedisTier>> tier =
      turbine::shared::RedisTier::Connect(
          {.seeds = *seeds,
           .user = flags.shared_cache_user,
           .password = password,
           .timeout = std::chrono::milliseconds(flags.shared_cache_timeout_ms),
           .connect_lazily = true,
           // A record the engine would not take (over its limit) is not read whole.
           .max_value_bytes = options->max_record_bytes});
  if (!tier.ok()) return tier.status();
  const turbine::shared::RedisClient& client = (*tier)->client();
  if (client.Primaries().empty()) {
    spdlog::warn("shared cache {} does not answer yet; answering locally until it does",
                 flags.shared_cache);
  } else {
    spdlog::info("shared cache: {} ({}), namespace {}, {}", flags.shared_cache,
                 client.cluster_mode()
                     ? "cluster, " + std::to_string(client.Primaries().size()) + " primaries"
                     : std::string("one Redis"),
                 flags.shared_cache_namespace, flags.shared_cache_mode);
  }
  options->tier = *tier;
  options->unavailable_at_start = client.Primaries().empty();  // said just above
  options->name_space = flags.shared_cache_namespace;
  options->publish = flags.shared_cache_mode == "readwrite";
  return absl::OkStatus();
}

// StartLogging sends spdlog (the daemon's and the engine's messages) to stderr.
// Protobuf's own messages go there too. One about parsing is a client's request that did
// not parse, which the client is told why (request_parsing.h): at debug level, since as a
// raw line for each such request it let any client write to the log at will. Others keep
// their level.
void StartLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("turbined");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
        const bool parsing = message.find("parsing a protocol buffer") != std::string::npos;
        const spdlog::level::level_enum as =
            level == google::protobuf::LOGLEVEL_FATAL             ? spdlog::level::critical
            : parsing || level == google::protobuf::LOGLEVEL_INFO ? spdlog::level::debug
            : level == google::protobuf::LOGLEVEL_WARNING         ? spdlog::level::warn
                                                                  : spdlog::level::err;
        spdlog::log(as, "protobuf {}:{}: {}", file, line, message);
      });
  // gRPC's error lines (all it passes on unless GRPC_VERBOSITY asks for more), which it
  // wrote to stderr past --log-level, go through the log too (GRPC_VERBOSITY in the
  // environment keeps gRPC's own writer, for debugging gRPC). A failed TLS handshake is a
  // peer's doing, and as an error line for each one it let any client write to the log at
  // will (400 a second, 70 KB/s): at debug level, told by its message. An assertion's
  // line, the reason of the abort that follows it, is never lowered.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_function([](gpr_log_func_args* args) {
      const std::string_view message = args->message;
      const bool handshake = message.find("assertion failed") == std::string_view::npos &&
                             (message.find("Handshake failed") != std::string_view::npos ||
                              message.find("Handshaking failed") != std::string_view::npos ||
                              message.find("Security handshake failed") != std::string_view::npos);
      const spdlog::level::level_enum as = args->severity != GPR_LOG_SEVERITY_ERROR
                                               ? spdlog::level::debug
                                           : handshake ? spdlog::level::debug
                                                       : spdlog::level::warn;
      spdlog::log(as, "grpc {}:{}: {}", args->file, args->line, args->message);
    });
  }
}

// BlockStopSignals makes SIGTERM, SIGINT and SIGHUP wait for sigwait: no handler then runs
// in the middle of gRPC or the engine. Called before any thread starts, so every thread
// inherits the mask. SIGHUP (the terminal it ran in closed) stops it as the others do:
// there is no configuration to read again, and by default it killed the daemon, without
// the last snapshot. Unless it is ignored (`nohup`): a blocked signal is taken by sigwait
// even then, and the daemon would stop with the terminal it was meant to outlive.
// SIGUSR1, SIGUSR2 and SIGALRM are waited for too, and only logged: by default they killed
// the daemon at once (no last snapshot, the socket left behind), and a log rotation's
// `postrotate` sends one of the first two by habit (turbined writes no log file to reopen).
// Nothing in the process sets an alarm: one comes from outside, by mistake.
sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR1);
  sigaddset(&stop_signals, SIGUSR2);
  sigaddset(&stop_signals, SIGALRM);
  struct sigaction hangup {};
  if (sigaction(SIGHUP, nullptr, &hangup) != 0 || hangup.sa_handler != SIG_IGN) {
    sigaddset(&stop_signals, SIGHUP);
  }
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
      return kExitDataDirInUse;
    case absl::StatusCode::kInvalidArgument:
      return kExitBadConfig;
    default:
      return kExitCannotStart;
  }
}

void LogReady(const turbine::server::Server& server, const std::string& data_dir) {
  spdlog::info("data dir {}: {}", data_dir, server.store_report());
  // Where it serves is said at every level but `off`: scripts and supervisors wait for
  // "turbined ready on", and under --log-level warn it never came.
  std::shared_ptr<spdlog::logger> said = spdlog::default_logger();
  if (said->level() != spdlog::level::off && said->level() > spdlog::level::info) {
    said = said->clone("turbined");
    said->set_level(spdlog::level::info);
  }
  if (const std::string metrics = server.metrics_address(); !metrics.empty()) {
    said->info("turbined metrics on http://{}/metrics", metrics);
  }
  if (const std::string page = server.http_address(); !page.empty()) {
    said->info("turbined status page on http://{}/", page);
  }
  for (const std::string& address : server.addresses()) {
    said->info("turbined ready on {}", address);
  }
}

// CutStopShort ends the process now, as a SIGKILL would: without the last snapshot (what
// it would have written is computed again), never losing an acknowledged input (each was
// synced before it was acknowledged).
[[noreturn]] void CutStopShort(const std::string& why) {
  spdlog::critical("{}: exiting without the last snapshot (acknowledged inputs are on disk)", why);
  spdlog::default_logger()->flush();  // other threads may still log: the logger stays
  std::_Exit(kExitStopCutShort);
}

// A stop signal this soon after the one that began the stop, from the same sender, is the
// same one sent twice.
constexpr std::chrono::milliseconds kSameSignal{1000};

// ServeUntilStopped serves until a stop signal or the Shutdown RPC, then stops the server.
// The stop is bounded: a store that no longer completes writes (RocksDB waiting for a
// flush that never comes, after a full disk) would otherwise keep the daemon alive for
// good. A stop signal while stopping cuts it short at once.
void ServeUntilStopped(std::unique_ptr<turbine::server::Server> server, sigset_t stop_signals,
                       std::chrono::seconds stop_timeout) {
  std::mutex mu;
  std::condition_variable changed;
  bool stopping = false;  // guarded by mu, as `done` and `signalled_at`
  bool done = false;
  // The signal that began the stop: when, which, and who sent it.
  std::optional<std::chrono::steady_clock::time_point> signalled_at;
  int stop_signal = 0;
  pid_t stop_sender = 0;
  turbine::server::Server* const serving = server.get();
  std::thread signal_thread([&] {
    for (;;) {
      siginfo_t info{};
      const int signal = sigwaitinfo(&stop_signals, &info);
      if (signal < 0) continue;  // EINTR
      std::unique_lock lock(mu);
      if (done) return;  // woken below, once stopped
      if (signal == SIGUSR1 || signal == SIGUSR2 || signal == SIGALRM) {
        spdlog::info("{} received: ignored (SIGTERM, SIGINT or SIGHUP stop turbined)",
                     strsignal(signal));
        continue;
      }
      // A hangup comes twice when a terminal closes (the shell passes it on, then the
      // kernel sends it): only SIGTERM or SIGINT cuts a stop short.
      if (stopping && signal == SIGHUP) continue;
      // The same signal from the same sender again at once is one signal sent twice:
      // `timeout` and some supervisors send it to the process and then to its process
      // group. A person's second Ctrl-C comes later than this.
      const auto now = std::chrono::steady_clock::now();
      if (stopping && signalled_at.has_value() && now - *signalled_at < kSameSignal &&
          signal == stop_signal && info.si_pid == stop_sender) {
        spdlog::info("{} received again at once (sent to the process group too): the same stop",
                     strsignal(signal));
        continue;
      }
      if (stopping) {
        lock.unlock();
        CutStopShort(std::string(strsignal(signal)) + " received while stopping");
      }
      spdlog::info("{} received: finishing in-flight calls and flushing", strsignal(signal));
      stopping = true;
      signalled_at = now;
      stop_signal = signal;
      stop_sender = info.si_pid;
      changed.notify_all();
      serving->Shutdown();  // under mu: the server is not destroyed before it returns
    }
  });
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    changed.wait(lock, [&] { return stopping || done; });
    if (stop_timeout.count() == 0) {
      changed.wait(lock, [&] { return done; });
    } else if (!changed.wait_for(lock, stop_timeout, [&] { return done; })) {
      lock.unlock();
      CutStopShort("the stop did not end within " + std::to_string(stop_timeout.count()) + " s");
    }
  });
  server->WaitForShutdownRequest();
  {
    std::lock_guard lock(mu);  // the Shutdown RPC asked, or a signal did
    stopping = true;
    changed.notify_all();
  }
  server->Wait();
  spdlog::info("stopped; writing the last snapshot");
  server.reset();
  {
    std::lock_guard lock(mu);
    done = true;
    changed.notify_all();
  }
  watchdog.join();
  // The signal thread is still in sigwait: wake it.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  spdlog::info("bye");
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const int exit_code = ParseFlags(argc, argv, &flags); exit_code >= 0) return exit_code;
  StartLogging(flags.log_level);
  spdlog::info("turbined {} (pid {})", TURBINE_VERSION, ::getpid());  // what is deployed
  // gRPC's threads outlive main (Server::Start keeps the library): a line one of them logs
  // once main returns goes to stderr, not through spdlog, whose registry exit destroys.
  const absl::Cleanup grpc_log_to_stderr = [] { gpr_set_log_function(nullptr); };
  if (const turbine::GcOptions& gc = flags.server.gc;
      gc.disk_limit > 0 && gc.interval == std::chrono::seconds::zero()) {
    // Both set on purpose, for passes only when asked; but a store left to grow past a
    // limit that looks set is a surprise to find out from `du`.
    spdlog::warn(
        "--disk-limit {} is kept only by `turbine gc`: --gc-interval 0 turns the "
        "background passes off",
        gc.disk_limit);
  }
  if (!flags.token_file.empty() && !ReadToken(flags.token_file, &flags.server.auth_token)) {
    spdlog::critical("the token file {} is empty, unreadable or larger than 64 KiB",
                     flags.token_file);
    return kExitBadConfig;
  }
  if (const std::string problem = turbine::server::TokenProblem(flags.server.auth_token);
      !problem.empty()) {
    spdlog::critical("the token file {} {}", flags.token_file, problem);
    return kExitBadConfig;
  }
  if (absl::Status shared = ConnectSharedCache(flags, &flags.server.shared); !shared.ok()) {
    // Said once: the address's own errors already begin "shared cache address".
    const std::string message(shared.message());
    spdlog::critical("{}{}", message.starts_with("shared cache") ? "" : "shared cache: ", message);
    return kExitBadConfig;
  }
  // A process-wide setting, so the program's choice (engine.h says why).
  turbine::DisableMutexDeadlockDetection();
  // Blocks of 128 KiB and more (large values, the store's and gRPC's buffers) always from
  // mmap, so that freeing one gives its pages back. By default glibc raises this threshold
  // each time such a block is freed, and then serves them from its arenas, which keep the
  // pages of freed blocks (malloc_trim did not return them either): after 48 values of 1 MiB
  // were evicted the resident set stayed 60 MiB over the daemon's own, past any
  // --memory-limit, with nothing in memory. Setting it fixes it where it is.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  const sigset_t stop_signals = BlockStopSignals();
  absl::StatusOr<std::unique_ptr<turbine::server::Server>> server =
      turbine::server::Server::Start(flags.server);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", std::string(server.status().message()));
    return ExitCodeFor(server.status());
  }
  LogReady(**server, flags.server.data_dir);
  ServeUntilStopped(std::move(*server), stop_signals, flags.stop_timeout);
  return 0;
}
