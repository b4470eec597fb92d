// wordcountd — serves the functions of word_count.cc (and Turbine's standard ones) on a
// unix socket until SIGTERM or SIGINT.
//
//   wordcountd SOCKET DATA_DIR
//
// Prints "wordcountd ready on unix:SOCKET" once it serves. The cache lives in DATA_DIR:
// restarted on the same DATA_DIR, it answers from disk what it computed before.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "turbine/server/server.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOCKET DATA_DIR\n", argv[0]);
    return 2;
  }
  turbine::server::ServerOptions options;
  options.listen = {std::string("unix:") + argv[1]};
  options.data_dir = argv[2];
  // Process-wide settings are this program's to choose: without this, Abseil as Debian
  // builds it checks every mutex for deadlocks (turbine/engine.h says what that costs).
  turbine::DisableMutexDeadlockDetection();

  // A thread waits for the stop signals with sigwait, so no signal handler runs inside gRPC
  // or the engine. Blocked before the server starts its threads, which inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is an error on its call, not our end

  absl::StatusOr<std::unique_ptr<turbine::server::Server>> server =
      turbine::server::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "wordcountd: cannot start: %s\n", server.status().ToString().c_str());
    return 1;
  }
  for (const std::string& address : (*server)->addresses()) {
    std::fprintf(stderr, "wordcountd ready on %s\n", address.c_str());
  }

  // The Shutdown RPC stops the server too; the signal thread, still in sigwait then, is
  // woken with a SIGTERM of our own (Shutdown twice is harmless).
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  server->reset();  // writes the last snapshot
  std::fprintf(stderr, "wordcountd stopped\n");
  return 0;
}
