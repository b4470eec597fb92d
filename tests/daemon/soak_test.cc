// The bounded fault soak: the real turbined under concurrent clients while the test kills it
// (SIGKILL, SIGTERM), edits the files it reads and, as root, fills and empties the disk
// under its database. Every answer is checked against an oracle the test computes from
// scratch, and every acknowledged input must survive every restart.
//
// The short run is part of the suite (TURBINE_SOAK_SECONDS, default 30); scripts/soak runs
// it for minutes. TURBINE_SOAK_SEED replays a schedule of client operations (the timing of
// faults against them is not reproducible: that is the point of a soak).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../storage/small_disk.h"
#include "../storage/temp_dir.h"
#include "daemon_process.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace {

using turbine::client::AsInt;
using turbine::client::CallResult;
using turbine::client::Client;
using turbine::client::Int;
using turbine::client::Str;
using turbine::testing::DaemonProcess;
using turbine::testing::SmallDisk;
using turbine::testing::TempDir;
using Clock = std::chrono::steady_clock;
namespace v1 = turbine::v1;

constexpr int kThreads = 4;
constexpr int kIntCells = 6;
constexpr int kFormulaCells = 4;
constexpr int kFiles = 2;
constexpr size_t kDiskBytes = size_t{64} << 20;
constexpr uint64_t kMaxOpsPerThread = 1'000'000;  // a bound besides time
constexpr int kMaxFailures = 20;                  // stop reporting (and soaking) after this

int SoakSeconds() {
  const char* text = std::getenv("TURBINE_SOAK_SECONDS");
  return text != nullptr ? std::max(1, std::atoi(text)) : 30;
}

uint64_t SoakSeed() {
  const char* text = std::getenv("TURBINE_SOAK_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : std::random_device{}();
}

// A restart makes calls fail with these codes: the daemon is gone (UNAVAILABLE) or stopping
// (CANCELLED after the 5 s grace). Anything else is an answer to check.
bool IsRestartCode(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kCancelled;
}

// Options: the daemon's address, and a deadline far beyond any answer of a daemon that is
// up (a hung call fails the soak rather than hanging it).
turbine::client::ConnectOptions Options(const std::string& address) {
  turbine::client::ConnectOptions options;
  options.address = address;
  options.deadline = std::chrono::seconds(20);
  return options;
}

// ---- the sheet oracle ------------------------------------------------------------------

// A formula cell combines two earlier cells of its thread; the test renders it as sheet
// syntax and evaluates it itself. Only operations that cannot overflow or divide by zero
// with the values used, so every cell has a value.
struct Formula {
  int op = 0;  // index into kOps
  std::string lhs, rhs;
};
constexpr int kOps = 6;

std::string Render(const Formula& f) {
  switch (f.op) {
    case 0:
      return f.lhs + " + " + f.rhs;
    case 1:
      return f.lhs + " - " + f.rhs;
    case 2:
      return "max(" + f.lhs + ", " + f.rhs + ")";
    case 3:
      return "min(" + f.lhs + ",\t" + f.rhs + ")";
    case 4:
      return "sum(" + f.lhs + ", " + f.rhs + ", 3) * 2";
    default:
      return "(" + f.lhs + " % 7) - -" + f.rhs;
  }
}

int64_t Apply(int op, int64_t x, int64_t y) {
  switch (op) {
    case 0:
      return x + y;
    case 1:
      return x - y;
    case 2:
      return std::max(x, y);
    case 3:
      return std::min(x, y);
    case 4:
      return (x + y + 3) * 2;
    default:
      return (x % 7) + y;  // C++ % takes the dividend's sign, as the sheet's does
  }
}

// ---- shared state: the daemon's generation, counters, failures ----------------------------

struct Shared {
  std::mutex mu;
  std::condition_variable changed;
  uint64_t generation = 0;  // guarded by mu; bumped by each start
  bool up = false;          // guarded by mu; false from before a signal until ready again
  // Fills of the disk so far, and whether it is full now: a refused write is allowed only
  // if the disk was full at some point during it.
  std::atomic<uint64_t> fills{0};
  std::atomic<bool> disk_full{false};
  std::atomic<bool> stop{false};
  std::string address;

  std::atomic<uint64_t> calls{0}, checks{0}, sets{0}, refused_writes{0}, ambiguous_writes{0},
      restart_waits{0}, file_edits{0}, restart_checks{0};
  std::atomic<int> failures{0};

  // WaitUp blocks until the daemon serves (or the soak stops) and returns its generation.
  uint64_t WaitUp() {
    std::unique_lock lock(mu);
    changed.wait(lock, [&] { return up || stop.load(); });
    return generation;
  }
  bool IsUp(uint64_t generation_seen) {
    std::lock_guard lock(mu);
    return up && generation == generation_seen;
  }
  void Fail(const std::string& message) {
    ADD_FAILURE() << message;
    if (++failures >= kMaxFailures) stop = true;
  }
};

// A value the daemon may hold for a key: one value once a write was acknowledged (or read
// back), several after a write whose reply was lost to a restart (it may or may not have
// been applied) until a read tells which.
using Possible = std::vector<int64_t>;

std::string Describe(const Possible& possible) {
  std::string text;
  for (int64_t v : possible) text += (text.empty() ? "" : " or ") + std::to_string(v);
  return text;
}

std::string Describe(const absl::StatusOr<CallResult>& result) {
  if (!result.ok()) return "call failed: " + result.status().ToString();
  if (!result->value.ok()) return "error: " + result->value.status().ToString();
  return result->value->ShortDebugString();
}

// ---- one client thread ------------------------------------------------------------------

// A Worker owns its cells and files, so it alone knows their true state: its oracle needs
// no coordination with the other threads, which still share the daemon, its engine and its
// store.
class Worker {
 public:
  Worker(int index, uint64_t seed, Shared& shared, const std::filesystem::path& files_dir)
      : index_(index), random_(seed), shared_(shared) {
    for (int i = 0; i < kIntCells; ++i) values_[IntCell(i)] = {0};
    for (int j = 0; j < kFormulaCells; ++j) {
      formulas_[FormulaCell(j)] = {RandomFormula(j, (index * kFormulaCells + j) % kOps)};
    }
    for (int k = 0; k < kFiles; ++k) {
      files_.push_back(
          {(files_dir / ("w" + std::to_string(index) + "-" + std::to_string(k) + ".txt")).string(),
           {std::nullopt}});
    }
  }

  // The inputs the soak starts from: every cell of this worker, set before any fault.
  std::vector<std::pair<std::string, v1::Value>> InitialInputs() const {
    std::vector<std::pair<std::string, v1::Value>> inputs;
    for (const auto& [name, possible] : values_) inputs.emplace_back(name, Int(possible[0]));
    for (const auto& [name, possible] : formulas_) inputs.emplace_back(name, Str(possible[0]));
    return inputs;
  }

  void Run(Clock::time_point end) {
    for (uint64_t op = 0; op < kMaxOpsPerThread && Clock::now() < end && !shared_.stop; ++op) {
      const int choice = static_cast<int>(random_() % 100);
      if (choice < 30) {
        SetSome();
      } else if (choice < 35) {
        EditFormula();
      } else if (choice < 55) {
        CheckInput(IntCell(static_cast<int>(random_() % kIntCells)), "input.get");
      } else if (choice < 80) {
        CheckFormula(FormulaCell(static_cast<int>(random_() % kFormulaCells)));
      } else if (choice < 90) {
        EditFile(files_[random_() % kFiles]);
      } else {
        CheckFileNow(files_[random_() % kFiles]);
      }
    }
  }

  // VerifyAll checks every cell and file against the oracle: after each restart and at the
  // end. An input that was acknowledged and is not there, or has another value, fails here.
  void VerifyAll(const char* when) {
    for (const auto& [name, possible] : values_) CheckInput(name, when);
    for (const auto& [name, possible] : formulas_) CheckFormulaText(name, when);
    for (const auto& [name, possible] : formulas_) CheckFormula(name);
    for (File& file : files_) CheckFileNow(file);
  }

 private:
  struct File {
    std::string path;
    // What the daemon may answer: the settled content (nullopt: no file), then every edit
    // since, until both functions answer the last one (inotify's report is asynchronous).
    std::vector<std::optional<std::string>> allowed;
  };

  std::string IntCell(int i) const {
    return "w" + std::to_string(index_) + "_a" + std::to_string(i);
  }
  std::string FormulaCell(int j) const {
    return "w" + std::to_string(index_) + "_f" + std::to_string(j);
  }
  // RandomFormula makes a formula for formula cell j over cells before it (no cycles), with
  // operation `op` or a random one, and remembers how to evaluate its text.
  std::string RandomFormula(int j, int op = -1) {
    Formula f;
    f.op = op >= 0 ? op : static_cast<int>(random_() % kOps);
    f.lhs = AnyCellBefore(j);
    f.rhs = AnyCellBefore(j);
    std::string text = Render(f);
    parsed_[text] = f;
    return text;
  }

  std::string AnyCellBefore(int j) {
    const int pick = static_cast<int>(random_() % (kIntCells + j));
    return pick < kIntCells ? IntCell(pick) : FormulaCell(pick - kIntCells);
  }

  // Call runs `call` on this worker's client, which lives through every restart. A call the
  // restart broke is retried on the next daemon when `retry`; otherwise its status is
  // returned, e.g. for a SetInputs whose fate the caller must record. A daemon that is up,
  // in the same generation as when the call started, must never answer UNAVAILABLE: not
  // even the first call after a restart.
  template <typename T, typename F>
  absl::StatusOr<T> Call(const std::string& what, bool retry, F call) {
    while (true) {
      const uint64_t generation = shared_.WaitUp();
      if (shared_.stop) return absl::CancelledError("soak stopped");
      if (generation != client_generation_) Resume(generation);
      ++shared_.calls;
      absl::StatusOr<T> result = call(*client_);
      if (result.ok() || !IsRestartCode(result.status().code())) return result;
      if (shared_.IsUp(generation)) {
        shared_.Fail(what + ": " + result.status().ToString() + " from a daemon that is up");
        return result;
      }
      ++shared_.restart_waits;
      if (!retry) return result;
    }
  }

  // Resume is the first thing a worker does with each daemon: on the first one it connects,
  // on a restarted one it checks that this worker's state survived.
  void Resume(uint64_t generation) {
    if (client_ == nullptr) client_ = Client::Connect(Options(shared_.address)).value();
    const bool restarted = client_generation_ != 0;
    client_generation_ = generation;
    if (restarted) {
      ++shared_.restart_checks;
      VerifyAll("input.get after a restart");
    }
  }

  // The fate of a SetInputs: acknowledged, refused (applied: no), lost to a restart
  // (applied: maybe), or a failure already reported.
  enum class Outcome { kAcknowledged, kRefused, kLost, kFailed };

  // Write sends one SetInputs and checks its reply: `changed` must be `expected_changed`
  // (when known), and a refusal is allowed only if the disk was full at some point during it.
  Outcome Write(const std::vector<std::pair<std::string, v1::Value>>& inputs,
                std::optional<uint32_t> expected_changed) {
    ++shared_.sets;
    const uint64_t fills_before = shared_.fills;
    const bool full_before = shared_.disk_full;
    const absl::StatusOr<uint32_t> changed =
        Call<uint32_t>("SetInputs", false, [&](Client& c) { return c.SetInputs(inputs); });
    std::string names;
    for (const auto& [name, value] : inputs) names += (names.empty() ? "" : ", ") + name;
    if (changed.ok()) {
      ++shared_.checks;
      if (expected_changed && *changed != *expected_changed) {
        shared_.Fail("SetInputs(" + names + "): expected " + std::to_string(*expected_changed) +
                     " changed, got " + std::to_string(*changed));
      }
      return Outcome::kAcknowledged;
    }
    if (changed.status().code() == absl::StatusCode::kResourceExhausted) {
      ++shared_.refused_writes;
      if (!full_before && !shared_.disk_full && shared_.fills == fills_before) {
        shared_.Fail("SetInputs(" + names +
                     ") refused although the disk was never full: " + changed.status().ToString());
        return Outcome::kFailed;
      }
      return Outcome::kRefused;
    }
    if (IsRestartCode(changed.status().code())) {
      ++shared_.ambiguous_writes;
      return Outcome::kLost;
    }
    shared_.Fail("SetInputs(" + names + "): " + changed.status().ToString());
    return Outcome::kFailed;
  }

  template <typename T>
  static void AddPossible(std::vector<T>& possible, const T& value) {
    if (std::find(possible.begin(), possible.end(), value) == possible.end()) {
      possible.push_back(value);
    }
  }

  // SetSome sets one to three integer cells in one batch.
  void SetSome() {
    std::vector<std::string> names;
    const int count = 1 + static_cast<int>(random_() % 3);
    for (int i = 0; i < count; ++i) {
      const std::string name = IntCell(static_cast<int>(random_() % kIntCells));
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    std::vector<std::pair<std::string, v1::Value>> inputs;
    std::map<std::string, int64_t> wanted;
    std::optional<uint32_t> expected_changed = 0;
    for (const std::string& name : names) {
      const int64_t value = static_cast<int64_t>(random_() % 2001) - 1000;
      inputs.emplace_back(name, Int(value));
      wanted[name] = value;
      const Possible& now = values_[name];
      if (now.size() != 1) {
        expected_changed.reset();
      } else if (expected_changed && now[0] != value) {
        ++*expected_changed;
      }
    }
    switch (Write(inputs, expected_changed)) {
      case Outcome::kAcknowledged:
        for (const auto& [name, value] : wanted) values_[name] = {value};
        break;
      case Outcome::kLost:
        for (const auto& [name, value] : wanted) AddPossible(values_[name], value);
        break;
      default:
        break;
    }
  }

  // EditFormula gives a formula cell new operands and a new operation: the sheet's
  // dependencies change, not only its values.
  void EditFormula() {
    const int j = static_cast<int>(random_() % kFormulaCells);
    const std::string name = FormulaCell(j);
    const std::string text = RandomFormula(j);
    std::vector<std::string>& possible = formulas_[name];
    std::optional<uint32_t> expected_changed;
    if (possible.size() == 1) expected_changed = possible[0] != text ? 1 : 0;
    switch (Write({{name, Str(text)}}, expected_changed)) {
      case Outcome::kAcknowledged:
        possible = {text};
        break;
      case Outcome::kLost:
        AddPossible(possible, text);
        break;
      default:
        break;
    }
  }

  // CheckFormulaText reads a formula cell's text and settles what it may hold to it.
  void CheckFormulaText(const std::string& name, const std::string& what) {
    const auto result =
        Call<CallResult>(what, true, [&](Client& c) { return c.Call("input.get", {Str(name)}); });
    if (shared_.stop) return;
    ++shared_.checks;
    std::vector<std::string>& possible = formulas_[name];
    const std::string* got =
        result.ok() && result->value.ok() ? turbine::client::AsString(*result->value) : nullptr;
    if (got == nullptr || std::find(possible.begin(), possible.end(), *got) == possible.end()) {
      std::string expected;
      for (const std::string& text : possible)
        expected += (expected.empty() ? "\"" : " or \"") + text + "\"";
      shared_.Fail(what + "(" + name + "): expected " + expected + ", got " + Describe(result));
      return;
    }
    possible = {*got};
  }

  // CheckInput reads `name` and settles what it may hold to what it holds.
  void CheckInput(const std::string& name, const std::string& what) {
    const auto result =
        Call<CallResult>(what, true, [&](Client& c) { return c.Call("input.get", {Str(name)}); });
    if (shared_.stop) return;
    ++shared_.checks;
    Possible& possible = values_[name];
    const std::optional<int64_t> got =
        result.ok() && result->value.ok() ? AsInt(*result->value) : std::nullopt;
    if (!got || std::find(possible.begin(), possible.end(), *got) == possible.end()) {
      shared_.Fail(what + "(" + name + "): expected " + Describe(possible) + ", got " +
                   Describe(result));
      return;
    }
    possible = {*got};
  }

  // Evaluate is the from-scratch oracle of a cell; nullopt while one of its inputs is
  // uncertain.
  std::optional<int64_t> Evaluate(const std::string& name) {
    if (const auto value = values_.find(name); value != values_.end()) {
      if (value->second.size() != 1) return std::nullopt;
      return value->second[0];
    }
    const std::vector<std::string>& texts = formulas_.at(name);
    if (texts.size() != 1) return std::nullopt;
    const Formula& f = parsed_.at(texts[0]);
    const std::optional<int64_t> x = Evaluate(f.lhs), y = Evaluate(f.rhs);
    if (!x || !y) return std::nullopt;
    return Apply(f.op, *x, *y);
  }

  void CheckFormula(const std::string& name) {
    // Settle the inputs a lost write left uncertain first, so the oracle has one answer.
    for (const auto& [cell, possible] : values_) {
      if (possible.size() > 1) CheckInput(cell, "input.get");
    }
    for (const auto& [cell, possible] : formulas_) {
      if (possible.size() > 1) CheckFormulaText(cell, "input.get");
    }
    const auto result = Call<CallResult>(
        "sheet.eval", true, [&](Client& c) { return c.Call("sheet.eval", {Str(name)}); });
    const std::optional<int64_t> expected = Evaluate(name);
    if (shared_.stop || !expected) return;
    ++shared_.checks;
    const std::optional<int64_t> got =
        result.ok() && result->value.ok() ? AsInt(*result->value) : std::nullopt;
    if (got != expected) {
      shared_.Fail("sheet.eval(" + name + " = \"" + formulas_.at(name)[0] + "\"): expected " +
                   std::to_string(*expected) + ", got " + Describe(result));
    }
  }

  // EditFile replaces the file whole (a rename, so no reader sees half of it) or deletes it,
  // then waits until both functions answer the new state, checking each answer on the way.
  void EditFile(File& file) {
    std::optional<std::string> content;
    if (random_() % 5 != 0) {
      content.emplace();
      const int lines = static_cast<int>(random_() % 40);
      for (int i = 0; i < lines; ++i) content->append(std::to_string(random_() % 1000) + " x\n");
      if (random_() % 2 == 0) content->append("no newline");
      const std::string temp = file.path + ".tmp";
      std::ofstream(temp, std::ios::binary) << *content;
      std::filesystem::rename(temp, file.path);
    } else {
      std::error_code ignored;
      std::filesystem::remove(file.path, ignored);
    }
    ++shared_.file_edits;
    file.allowed.push_back(content);
    // inotify reports the edit within 300 ms; a restart re-checks every file. Both answers
    // must reach the new state well within this.
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    bool lines_done = false, read_done = false;
    while (!shared_.stop && !(lines_done && read_done)) {
      if (!lines_done) lines_done = CheckFile(file, "text.lines");
      if (!read_done) read_done = CheckFile(file, "fs.read");
      if (lines_done && read_done) break;
      if (Clock::now() > deadline) {
        shared_.Fail(file.path + ": the daemon still does not answer the edit after 30 s");
        break;
      }
      // Waiting for inotify's asynchronous report: there is nothing to wait on from here.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    file.allowed = {content};
  }

  // CheckFileNow checks a file whose last edit was answered already: only it is allowed.
  void CheckFileNow(File& file) {
    CheckFile(file, "text.lines");
    CheckFile(file, "fs.read");
  }

  // CheckFile calls `function` on the file: the answer must be one of the allowed states.
  // Returns whether it is the last one.
  bool CheckFile(const File& file, const std::string& function) {
    const auto result = Call<CallResult>(
        function, true, [&](Client& c) { return c.Call(function, {Str(file.path)}); });
    if (shared_.stop) return true;
    ++shared_.checks;
    int matched = -1;
    for (size_t i = 0; i < file.allowed.size(); ++i) {
      if (Matches(function, file.allowed[i], result)) matched = static_cast<int>(i);
    }
    if (matched < 0) {
      std::string expected;
      for (const auto& state : file.allowed) {
        expected += (expected.empty() ? "" : " or ") + Expected(function, state);
      }
      shared_.Fail(function + "(" + file.path + "): expected " + expected + ", got " +
                   Describe(result));
      return true;
    }
    return matched == static_cast<int>(file.allowed.size()) - 1;
  }

  static std::string Expected(const std::string& function,
                              const std::optional<std::string>& state) {
    if (!state) return "an error (no file)";
    if (function == "fs.read") return "the " + std::to_string(state->size()) + " bytes written";
    return std::to_string(std::count(state->begin(), state->end(), '\n')) + " lines";
  }

  static bool Matches(const std::string& function, const std::optional<std::string>& state,
                      const absl::StatusOr<CallResult>& result) {
    if (!result.ok()) return false;
    if (!state) return !result->value.ok();
    if (!result->value.ok()) return false;
    if (function == "fs.read") {
      const std::string* text = turbine::client::AsString(*result->value);
      if (text == nullptr) text = turbine::client::AsBytes(*result->value);
      return text != nullptr && *text == *state;
    }
    return AsInt(*result->value) == std::count(state->begin(), state->end(), '\n');
  }

  const int index_;
  std::mt19937_64 random_;
  Shared& shared_;
  std::unique_ptr<Client> client_;
  uint64_t client_generation_ = 0;
  std::map<std::string, Possible> values_;
  std::map<std::string, Formula> parsed_;                     // every formula text written, parsed
  std::map<std::string, std::vector<std::string>> formulas_;  // what each may hold
  std::vector<File> files_;
};

// ---- the controller: faults ---------------------------------------------------------------

class Soak {
 public:
  Soak() : disk_(kDiskBytes) {
    data_dir_ = (disk_.mounted() ? disk_.path() : scratch_.path()) / "data";
    shared_.address = turbine::client::DefaultAddress(data_dir_.string());
  }

  const SmallDisk& disk() const { return disk_; }

  void Run(int seconds, uint64_t seed) {
    std::mt19937_64 random(seed);
    std::vector<std::unique_ptr<Worker>> workers;
    for (int i = 0; i < kThreads; ++i) {
      workers.push_back(std::make_unique<Worker>(i, random(), shared_, files_.path()));
    }
    ASSERT_TRUE(StartDaemon());
    for (const auto& worker : workers) {
      ASSERT_TRUE(Connect()->SetInputs(worker->InitialInputs()).ok());
    }

    const auto end = Clock::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    for (const auto& worker : workers) threads.emplace_back([&, w = worker.get()] { w->Run(end); });
    while (Clock::now() < end && !shared_.stop) {
      if (!daemon_->PumpLog(std::chrono::milliseconds(200 + random() % 1300))) {
        shared_.Fail("turbined died by itself; its log:\n" + daemon_->log());
        break;
      }
      const int fault = static_cast<int>(random() % 10);
      if (fault < 4) {
        Restart(SIGKILL);
      } else if (fault < 7) {
        Restart(SIGTERM);
      } else if (disk_.mounted()) {
        ToggleFiller();
      }
    }
    shared_.stop = true;
    for (std::thread& thread : threads) thread.join();

    // The end: space back, one more SIGKILL, and every worker's state must be there.
    if (filled_) ToggleFiller();
    shared_.stop = false;
    Restart(SIGKILL);
    for (const auto& worker : workers) worker->VerifyAll("input.get at the end");
    shared_.stop = true;
    StopDaemon(SIGTERM);
    PrintSummary(seconds, seed);
  }

 private:
  bool StartDaemon() {
    daemon_ = std::make_unique<DaemonProcess>();
    // Two workers: the machine has few cores and the clients need some; snapshots often,
    // so SIGKILL finds them half-written.
    if (!daemon_->Start({"--data-dir", data_dir_.string(), "--workers", "2",
                         "--snapshot-interval-ms", "100"})) {
      shared_.Fail("turbined did not start; its log:\n" + daemon_->log());
      return false;
    }
    std::lock_guard lock(shared_.mu);
    ++shared_.generation;
    shared_.up = true;
    shared_.changed.notify_all();
    return true;
  }

  // Connect makes a client of the daemon, for the controller's own calls.
  std::unique_ptr<Client> Connect() { return Client::Connect(Options(shared_.address)).value(); }

  void StopDaemon(int signal) {
    {
      std::lock_guard lock(shared_.mu);
      shared_.up = false;  // before the signal: a failed call after this is the restart's
    }
    const auto start = Clock::now();
    const int status = daemon_->Stop(signal);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (signal == SIGKILL && status != 128 + SIGKILL) {
      shared_.Fail("SIGKILL: turbined exited with " + std::to_string(status));
    }
    if (signal == SIGTERM) {
      ++sigterms_;
      longest_sigterm_ = std::max(longest_sigterm_, took);
      if (status != 0) {
        shared_.Fail("SIGTERM: turbined exited with " + std::to_string(status) + " (disk " +
                     (filled_ ? "full" : "not full") + "); its log:\n" + daemon_->log());
      }
    } else {
      ++sigkills_;
    }
  }

  void Restart(int signal) {
    StopDaemon(signal);
    if (!StartDaemon()) shared_.stop = true;
  }

  // ToggleFiller fills the disk to the last byte, or frees it and checks that a write
  // succeeds at once, with no restart.
  void ToggleFiller() {
    if (!filled_) {
      shared_.disk_full = true;
      ++shared_.fills;
      disk_.Fill("filler");
      filled_ = true;
      ++fills_;
      return;
    }
    disk_.Free("filler");
    filled_ = false;
    shared_.disk_full = false;
    const absl::StatusOr<uint32_t> probe = Connect()->SetInputs({{"soak_probe", Int(++probes_)}});
    if (!probe.ok()) {
      shared_.Fail("SetInputs right after the disk was freed: expected OK, got " +
                   probe.status().ToString());
    }
  }

  void PrintSummary(int seconds, uint64_t seed) {
    std::printf(
        "soak: %d s, seed %llu, %d client threads: %llu calls, %llu checks, %llu SetInputs "
        "(%llu refused: disk full, %llu lost to a restart), %llu file edits; %d restarts "
        "(%d SIGKILL, %d SIGTERM, longest SIGTERM %lld ms), %llu restart checks, %d disk fills "
        "%s; %d failures\n",
        seconds, static_cast<unsigned long long>(seed), kThreads,
        static_cast<unsigned long long>(shared_.calls.load()),
        static_cast<unsigned long long>(shared_.checks.load()),
        static_cast<unsigned long long>(shared_.sets.load()),
        static_cast<unsigned long long>(shared_.refused_writes.load()),
        static_cast<unsigned long long>(shared_.ambiguous_writes.load()),
        static_cast<unsigned long long>(shared_.file_edits.load()), sigkills_ + sigterms_,
        sigkills_, sigterms_, static_cast<long long>(longest_sigterm_.count()),
        static_cast<unsigned long long>(shared_.restart_checks.load()), fills_,
        disk_.mounted() ? "" : ("(skipped: " + disk_.why_not() + ")").c_str(),
        shared_.failures.load());
  }

  SmallDisk disk_;
  TempDir scratch_;  // the data dir when there is no small disk
  TempDir files_;    // the files the workers edit: never on the small disk
  std::filesystem::path data_dir_;
  Shared shared_;
  std::unique_ptr<DaemonProcess> daemon_;
  bool filled_ = false;
  int fills_ = 0, probes_ = 0, sigkills_ = 0, sigterms_ = 0;
  std::chrono::milliseconds longest_sigterm_{0};
};

TEST(Soak, FaultsNeitherLoseAcknowledgedInputsNorGiveWrongAnswers) {
  Soak soak;
  if (!soak.disk().mounted()) {
    std::printf("soak: the full-disk part is skipped: %s\n", soak.disk().why_not().c_str());
  }
  soak.Run(SoakSeconds(), SoakSeed());
}

}  // namespace
