// resumer.cc — RocksDB's resume on a thread of its own.
#include "resumer.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace turbine::storage {

struct Resumer::State {
  std::mutex mu;
  std::condition_variable returned;
  bool running = false;
  bool said_late = false;  // logged that this resume is late
  // The Resumer is gone and left the resume running: it logs nothing more (the process
  // may be exiting).
  bool abandoned = false;
  std::chrono::steady_clock::time_point began;
  std::string what;  // of the one running or last run
  // What the last resume returned, until a writer takes it. A failure nobody waited for
  // is the next writer's: it says the disk is still full rather than starting another.
  std::optional<absl::Status> result;
};

Resumer::Resumer(std::chrono::milliseconds wait)
    : wait_(wait), state_(std::make_shared<State>()) {}

Resumer::~Resumer() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(state_->mu);
    if (state_->running) {
      state_->abandoned = true;
      thread_.detach();  // it holds the state; what it resumes was left to it (Finish)
      return;
    }
  }
  thread_.join();
}

absl::Status Resumer::Run(std::string_view what, std::function<absl::Status()> resume) {
  std::unique_lock lock(state_->mu);
  if (!state_->running) {
    if (state_->result.has_value() && !state_->result->ok()) {
      return *std::exchange(state_->result, std::nullopt);
    }
    if (thread_.joinable()) thread_.join();  // the last one, which has returned
    state_->running = true;
    state_->said_late = false;
    state_->result.reset();
    state_->began = std::chrono::steady_clock::now();
    state_->what = std::string(what);
    thread_ = std::thread([state = state_, resume = std::move(resume)] {
      absl::Status result = resume();
      std::lock_guard lock(state->mu);
      if (state->said_late && !state->abandoned) {
        spdlog::info("the store's {} returned: {}", state->what,
                     result.ok() ? std::string("writes go on") : std::string(result.message()));
      }
      state->result = std::move(result);
      state->running = false;
      state->returned.notify_all();
    });
  }
  const auto deadline = state_->began + wait_;
  if (state_->returned.wait_until(lock, deadline, [this] { return !state_->running; })) {
    return *std::exchange(state_->result, std::nullopt);
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - state_->began);
  if (!state_->said_late) {
    state_->said_late = true;
    spdlog::error(
        "the store's {} after a failed write has not returned in {} ms (RocksDB waits "
        "for a flush); writes are refused with UNAVAILABLE until it does; a restart of the "
        "daemon recovers",
        state_->what, waited.count());
  }
  return absl::UnavailableError(
      "the store is recovering from a failed write and has not finished in " +
      std::to_string(waited.count()) + " ms; writes are refused until it does");
}

bool Resumer::Running() const {
  std::lock_guard lock(state_->mu);
  return state_->running;
}

bool Resumer::Finish() {
  std::unique_lock lock(state_->mu);
  return state_->returned.wait_until(lock, state_->began + wait_,
                                     [this] { return !state_->running; });
}

}  // namespace turbine::storage
