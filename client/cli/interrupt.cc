#include "interrupt.h"

#include <unistd.h>

#include <cerrno>

namespace turbine::cli {
namespace {

constexpr char kInterrupted = 'i';
constexpr char kFinished = 'f';

std::atomic<int> wake_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free, "read from a signal handler");

void OnSignal(int) {
  int fd = wake_fd.load();
  if (fd >= 0) {
    const char byte = kInterrupted;
    // Nothing useful to do if the pipe is full: a wake-up is already pending.
    [[maybe_unused]] ssize_t written = write(fd, &byte, 1);
  }
}

}  // namespace

CancelOnInterrupt::CancelOnInterrupt(client::Cancellation* cancel) : cancel_(cancel) {
  if (pipe(pipe_) != 0) return;  // without a pipe, signals keep their default effect
  wake_fd.store(pipe_[1]);
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
  waiter_ = std::thread([this] { WaitForSignal(); });
}

CancelOnInterrupt::~CancelOnInterrupt() {
  if (!waiter_.joinable()) return;
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
  wake_fd.store(-1);
  const char byte = kFinished;
  [[maybe_unused]] ssize_t written = write(pipe_[1], &byte, 1);
  waiter_.join();
  close(pipe_[0]);
  close(pipe_[1]);
}

void CancelOnInterrupt::WaitForSignal() {
  char byte = 0;
  ssize_t n;
  do {
    n = read(pipe_[0], &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1 && byte == kInterrupted) cancel_->Cancel();
}

}  // namespace turbine::cli
