// lifecycle_bench.cc — a long-lived daemon's memory and disk (names: docs/ARCHITECTURE.md,
// "Benchmarks"), measured through a real turbined process started on a temp dir and driven
// over its unix socket with the C++ client. Each benchmark runs once (one iteration); the
// figures are counters, the time is the benchmark's whole run.
//
//   lifecycle/distinct-calls/N/limit_mib:L
//       N distinct demo.busy(k, 0) calls pipelined on one CallStream into a daemon started
//       with --memory-limit L MiB (0: the daemon's default), then all N again (re-reads),
//       then all N again after a restart. The daemon's peak resident set (VmHWM) against the
//       limit, resident bytes per task, the store on disk per task, and where re-reads came
//       from (executed, disk, memory).
//   lifecycle/file-versions/V
//       one 1.5 MB file rewritten V times, text.lines read after each; the store before and
//       after a garbage collection pass (CollectGarbage, as `turbine gc`), and how many
//       fs.content versions are left on disk (counted in the stopped daemon's store).
//   lifecycle/killed-idle/N/settle:S
//       N distinct demo.busy calls, then the daemon idles (with --settle-delay 1s, until its
//       store has flushed its memtables; with 0, 5 s) and is killed with SIGKILL: the log
//       left behind, and the next start (exec to "turbined ready", which replays it).
//   lifecycle/unset-inputs/N/limit_mib:L
//       N inputs set (SetInputs, 10,000 a batch), all unset (DeleteInputs), then two garbage
//       collection passes (the first takes them out of memory, the second removes their
//       records), in a daemon with --memory-limit L MiB (0: the default): the resident set and
//       the tasks in memory after each step, the store before and after, and the input
//       records left on disk (counted in the stopped daemon's store).
//   lifecycle/gc-pause/N
//       N distinct demo.busy tasks on disk; a restarted daemon with --disk-limit 1 (all of
//       them are garbage) is called, one unary call at a time, on tasks it must read from its
//       store: latency percentiles while idle, then while a CollectGarbage pass runs.
//
// TURBINE_LIFECYCLE_TASKS (default 300000) and TURBINE_LIFECYCLE_VERSIONS (default 15) set N
// and V: the test suite's smoke run uses small ones. TURBINE_BENCH_DIR, else TMPDIR, else
// /tmp, holds the data directories, removed at the end.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/options_util.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../tests/daemon/stored_tasks.h"
#include "turbine/client/call_stream.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace turbine::bench {
namespace {

namespace fs = std::filesystem;
using client::CallResult;
using client::Client;
using client::Int;
using client::MakeCallRequest;
using client::Str;
using Clock = std::chrono::steady_clock;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

// A benchmark that failed makes the binary exit with 1 (Google Benchmark reports the error
// but exits with 0), so the test suite's smoke run fails with it.
bool failed = false;
void Fail(benchmark::State& state, const std::string& why) {
  failed = true;
  state.SkipWithError(why.c_str());
}

// ScratchDir is a fresh directory under TURBINE_BENCH_DIR / TMPDIR / /tmp, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TURBINE_BENCH_DIR");
    if (base == nullptr) base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr ? base : "/tmp") + "/turbine-lifecycle-XXXXXX";
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

// Daemon is a turbined process: its log goes to a file (a pipe nobody reads could fill and
// stop it), Start waits until it says it is ready, Stop sends SIGTERM and reaps it.
class Daemon {
 public:
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool Start(const std::vector<std::string>& args, const std::string& log_path) {
    log_path_ = log_path;
    // The log may hold earlier runs' lines (a restart appends): look only at what follows.
    std::error_code no_file;
    const uint64_t log_start = fs::exists(log_path) ? fs::file_size(log_path, no_file) : 0;
    // Everything the child needs is made before fork: it runs only async-signal-safe calls
    // (gRPC's threads may hold the allocator's locks at the fork).
    std::vector<std::string> copies = args;
    std::string binary = TURBINED_PATH;
    std::vector<char*> argv = {binary.data()};
    for (std::string& arg : copies) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(log, STDERR_FILENO);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(log);
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    const std::string marker = "turbined ready on ";
    while (Clock::now() < deadline) {
      const std::string log = ReadLog();
      const size_t found = log.find(marker, log_start);
      const size_t end = found == std::string::npos ? found : log.find('\n', found);
      if (end != std::string::npos) {
        address_ = log.substr(found + marker.size(), end - found - marker.size());
        return true;
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polls the log file
    }
    return false;
  }

  // Kill: SIGKILL, as a crash or the OOM killer would, and reap it.
  void Kill() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Stop: SIGTERM, then the exit code (128 + signal if killed).
  int Stop() {
    int status = 0;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::unique_ptr<Client> Connect() const {
    client::ConnectOptions options;
    options.address = address_;
    options.deadline = std::chrono::minutes(10);
    absl::StatusOr<std::unique_ptr<Client>> connected = Client::Connect(options);
    return connected.ok() ? std::move(*connected) : nullptr;
  }

  // StatusBytes reads a "VmHWM:" / "VmRSS:" line (kB) of /proc/PID/status, in bytes.
  uint64_t StatusBytes(const std::string& field) const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind(field, 0) == 0) {
        return std::strtoull(line.c_str() + field.size(), nullptr, 10) * 1024;
      }
    }
    return 0;
  }
  uint64_t PeakRss() const { return StatusBytes("VmHWM:"); }
  // The resident set's anonymous part (heap, stacks) and its file-backed part (the binary,
  // its libraries, mapped files).
  uint64_t RssAnon() const { return StatusBytes("RssAnon:"); }
  uint64_t RssFile() const { return StatusBytes("RssFile:"); }
  uint64_t Rss() const { return StatusBytes("VmRSS:"); }

  std::string ReadLog() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::string address_;
};

// DiskBytes is what `du` counts under `dir` (allocated blocks, not file lengths).
uint64_t DiskBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir, error)) {
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

// CompactedCopyBytes copies the stopped daemon's database at `db` to `copy`, compacts every
// table of the copy fully with the options the daemon wrote (compression included), and
// returns what `du` counts for its table files: the store's size once RocksDB has merged
// its levels. 0 if that failed.
uint64_t CompactedCopyBytes(const std::string& db, const std::string& copy) {
  std::error_code error;
  fs::copy(db, copy, fs::copy_options::recursive, error);
  if (error) return 0;
  rocksdb::DBOptions options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  if (!rocksdb::LoadLatestOptions(copy, rocksdb::Env::Default(), &options, &families,
                                  /*ignore_unknown_options=*/true)
           .ok()) {
    return 0;
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, copy, families, &handles, &raw).ok()) return 0;
  std::unique_ptr<rocksdb::DB> database(raw);
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  bool compacted = true;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    compacted = compacted && database->CompactRange(compact, handle, nullptr, nullptr).ok();
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) database->DestroyColumnFamilyHandle(handle);
  database.reset();
  if (!compacted) return 0;
  uint64_t bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(copy)) {
    struct stat st {};
    if (entry.path().extension() == ".sst" && ::stat(entry.path().c_str(), &st) == 0) {
      bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

// Sources counts where the replies of a pass of calls came from.
struct Sources {
  std::atomic<uint64_t> memory{0}, disk{0}, executed{0}, wrong{0};
  uint64_t total() const { return memory + disk + executed; }
};

// CallAll pipelines demo.busy(k, 0) for k in [0, n) on one CallStream and checks that each
// answer is k. False (with the reason in `error`) if the stream failed.
bool CallAll(Client& client, uint64_t n, Sources* sources, std::string* error) {
  const uint64_t counted_before = sources->total();
  absl::StatusOr<std::unique_ptr<client::CallStream>> stream =
      client.OpenCallStream([&](CallResult reply) {
        // Ids are assigned 1, 2, ... in the order of Send: reply `id` answers k = id - 1.
        const bool right =
            reply.value.ok() && reply.value->int_value() == static_cast<int64_t>(reply.id) - 1;
        if (!right) ++sources->wrong;
        switch (reply.source) {
          case v1::SOURCE_MEMORY:
            ++sources->memory;
            break;
          case v1::SOURCE_DISK:
            ++sources->disk;
            break;
          default:
            ++sources->executed;
            break;
        }
      });
  if (!stream.ok()) {
    *error = stream.status().ToString();
    return false;
  }
  for (uint64_t k = 0; k < n; ++k) {
    if (!(*stream)
             ->Send(MakeCallRequest("demo.busy", {Int(static_cast<int64_t>(k)), Int(0)}))
             .ok()) {
      break;
    }
  }
  const absl::Status closed = (*stream)->Close();
  const uint64_t replies = sources->total() - counted_before;
  if (!closed.ok() || replies != n || sources->wrong != 0) {
    *error = "stream: " + closed.ToString() + ", " + std::to_string(replies) + " of " +
             std::to_string(n) + " replies, " + std::to_string(sources->wrong) + " wrong";
    return false;
  }
  return true;
}

double Fraction(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

// LogBytes is the length of RocksDB's write-ahead logs in the database directory `db`.
uint64_t LogBytes(const std::string& db) {
  uint64_t bytes = 0;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(db, error)) {
    if (entry.path().extension() != ".log") continue;
    const uint64_t size = entry.file_size(error);  // a log deleted meanwhile counts nothing
    if (!error) bytes += size;
  }
  return bytes;
}

void KilledIdle(benchmark::State& state, uint64_t tasks, bool settle) {
  ScratchDir dir;
  const std::string data = dir.str() + "/data";
  const std::vector<std::string> args = {"--data-dir", data, "--gc-interval", "0",
                                         "--settle-delay", settle ? "1s" : "0"};
  for (auto _ : state) {
    Daemon daemon;
    if (!daemon.Start(args, dir.str() + "/turbined.log")) {
      Fail(state, "turbined did not start");
      return;
    }
    std::unique_ptr<Client> client = daemon.Connect();
    std::string error;
    Sources first;
    if (client == nullptr || !CallAll(*client, tasks, &first, &error)) {
      Fail(state, "calls: " + error);
      return;
    }
    // Idle. The snapshot after 100 ms of it writes every result; the settle then flushes.
    const auto deadline = Clock::now() + std::chrono::seconds(settle ? 60 : 5);
    while (Clock::now() < deadline && !(settle && LogBytes(data + "/db") < (1 << 20))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const uint64_t log_bytes = LogBytes(data + "/db");
    if (settle && log_bytes >= (1 << 20)) {
      Fail(state, "the idle daemon did not flush its store within 60 s");
      return;
    }
    client.reset();
    daemon.Kill();

    Daemon restarted;
    const auto restarting = Clock::now();
    if (!restarted.Start(args, dir.str() + "/turbined.log")) {
      Fail(state, "turbined did not restart after SIGKILL");
      return;
    }
    const double ready_seconds = std::chrono::duration<double>(Clock::now() - restarting).count();
    client = restarted.Connect();
    Sources after;
    if (client == nullptr || !CallAll(*client, tasks, &after, &error)) {
      Fail(state, "after the restart: " + error);
      return;
    }
    restarted.Stop();
    state.counters["tasks"] = static_cast<double>(tasks);
    state.counters["log_bytes_at_kill"] = static_cast<double>(log_bytes);
    state.counters["restart_ready_ms"] = ready_seconds * 1000.0;
    state.counters["restart_reread_disk_fraction"] = Fraction(after.disk, tasks);
    state.counters["restart_reread_executed_fraction"] = Fraction(after.executed, tasks);
  }
}

void DistinctCalls(benchmark::State& state, uint64_t tasks, uint64_t limit_mib) {
  ScratchDir dir;
  const std::string data = dir.str() + "/data";
  std::vector<std::string> args = {"--data-dir", data, "--gc-interval", "0"};
  if (limit_mib > 0) {
    args.push_back("--memory-limit");
    args.push_back(std::to_string(limit_mib) + "M");
  }
  for (auto _ : state) {
    Daemon daemon;
    if (!daemon.Start(args, dir.str() + "/turbined.log")) {
      Fail(state, "turbined did not start");
      return;
    }
    std::unique_ptr<Client> client = daemon.Connect();
    const uint64_t rss_start = daemon.Rss();
    std::string error;
    Sources first;
    const auto started = Clock::now();
    if (client == nullptr || !CallAll(*client, tasks, &first, &error)) {
      Fail(state, "first pass: " + error);
      return;
    }
    const double call_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const uint64_t peak_rss_calls = daemon.PeakRss();
    // The evictor measures the heap five times a second: give it two rounds to act on what
    // the calls left behind before the resident set is read.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const uint64_t rss_after = daemon.Rss();
    const uint64_t rss_anon = daemon.RssAnon();
    const uint64_t rss_file = daemon.RssFile();
    absl::StatusOr<v1::StatsReply> stats = client->Stats();
    if (!stats.ok() || !client->Flush().ok()) {
      Fail(state, "Stats or Flush failed");
      return;
    }
    Sources reread;
    if (!CallAll(*client, tasks, &reread, &error)) {
      Fail(state, "re-read: " + error);
      return;
    }
    const uint64_t peak_rss = daemon.PeakRss();
    absl::StatusOr<v1::StatsReply> reread_stats = client->Stats();
    if (!reread_stats.ok()) {
      Fail(state, "Stats failed after the re-read");
      return;
    }
    const auto stopping = Clock::now();
    if (daemon.Stop() != 0) {
      Fail(state, "turbined did not exit cleanly");
      return;
    }
    const double stop_seconds = std::chrono::duration<double>(Clock::now() - stopping).count();
    // The store at rest, as `du` counts it (the stop writes what is left in memory).
    const uint64_t store_bytes = DiskBytes(data + "/db");
    const uint64_t compacted_bytes = CompactedCopyBytes(data + "/db", dir.str() + "/compacted");

    Daemon restarted;
    Sources after_restart;
    const auto restarting = Clock::now();
    if (!restarted.Start(args, dir.str() + "/turbined.log")) {
      Fail(state, "turbined did not restart");
      return;
    }
    const double ready_seconds =
        std::chrono::duration<double>(Clock::now() - restarting).count();
    // The first answer after "ready": connecting, then one call (the last task; the
    // pass below asks for the others) that the store must answer.
    const auto asking = Clock::now();
    client = restarted.Connect();
    if (client == nullptr) {
      Fail(state, "no connection to the restarted turbined");
      return;
    }
    const int64_t last = static_cast<int64_t>(tasks) - 1;
    absl::StatusOr<CallResult> first_answer = client->Call("demo.busy", {Int(last), Int(0)});
    const double first_answer_seconds =
        std::chrono::duration<double>(Clock::now() - asking).count();
    if (!first_answer.ok() || !first_answer->value.ok() ||
        first_answer->value->int_value() != last || first_answer->source != v1::SOURCE_DISK) {
      Fail(state, "the first call after the restart was not answered right from the store");
      return;
    }
    ++after_restart.disk;
    if (!CallAll(*client, tasks - 1, &after_restart, &error)) {
      Fail(state, "after restart: " + error);
      return;
    }
    const uint64_t restart_peak_rss = restarted.PeakRss();
    if (restarted.Stop() != 0) {
      Fail(state, "restarted turbined did not exit cleanly");
      return;
    }

    const double n = static_cast<double>(tasks);
    state.counters["tasks"] = n;
    state.counters["calls_per_second"] = n / call_seconds;
    state.counters["memory_limit_bytes"] = static_cast<double>(stats->memory_limit_bytes());
    state.counters["peak_rss_bytes"] = static_cast<double>(peak_rss);
    state.counters["peak_rss_first_pass_bytes"] = static_cast<double>(peak_rss_calls);
    state.counters["peak_rss_per_limit"] =
        static_cast<double>(peak_rss) / static_cast<double>(stats->memory_limit_bytes());
    state.counters["rss_start_bytes"] = static_cast<double>(rss_start);
    state.counters["rss_bytes_per_task"] =
        (static_cast<double>(rss_after) - static_cast<double>(rss_start)) / n;
    state.counters["rss_after_calls_bytes"] = static_cast<double>(rss_after);
    state.counters["rss_anon_bytes"] = static_cast<double>(rss_anon);
    state.counters["rss_file_bytes"] = static_cast<double>(rss_file);
    state.counters["heap_bytes"] = static_cast<double>(stats->heap_bytes());
    state.counters["resident_bytes"] = static_cast<double>(stats->resident_bytes());
    // Calls of the first pass that waited for snapshots to catch up (admission), and how long.
    state.counters["admission_waits"] = static_cast<double>(stats->admission_waits());
    state.counters["admission_wait_ms"] = static_cast<double>(stats->admission_wait_micros()) / 1e3;
    state.counters["evicted_values"] = static_cast<double>(stats->evicted_values());
    // Whole tasks evicted by the end of the re-read, and of those, loaded back by it.
    state.counters["evicted_tasks"] = static_cast<double>(reread_stats->evicted_tasks());
    state.counters["reloaded_tasks"] = static_cast<double>(reread_stats->reloaded_tasks());
    state.counters["store_bytes"] = static_cast<double>(store_bytes);
    state.counters["disk_bytes_per_task"] = static_cast<double>(store_bytes) / n;
    state.counters["compacted_disk_bytes_per_task"] = static_cast<double>(compacted_bytes) / n;
    state.counters["stop_ms"] = stop_seconds * 1000.0;  // SIGTERM to exit
    state.counters["restart_ready_ms"] = ready_seconds * 1000.0;  // exec to "turbined ready"
    state.counters["restart_first_answer_ms"] = first_answer_seconds * 1000.0;  // then one call
    state.counters["reread_executed_fraction"] = Fraction(reread.executed, tasks);
    state.counters["reread_disk_fraction"] = Fraction(reread.disk, tasks);
    state.counters["restart_reread_executed_fraction"] = Fraction(after_restart.executed, tasks);
    state.counters["restart_reread_disk_fraction"] = Fraction(after_restart.disk, tasks);
    state.counters["restart_peak_rss_bytes"] = static_cast<double>(restart_peak_rss);
  }
}

// WriteText writes about 1.5 MB of lines that do not compress, `extra` short lines more than
// the other versions (so that each version has its own line count); returns the lines.
int64_t WriteText(const std::string& path, uint64_t seed, int extra) {
  std::mt19937_64 random(seed);
  std::string text;
  int64_t lines = 0;
  while (text.size() < (3u << 19)) {
    for (int i = 0; i < 63; ++i) text += static_cast<char>('!' + random() % 90);
    text += '\n';
    ++lines;
  }
  for (int i = 0; i < extra; ++i, ++lines) text += "+\n";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return lines;
}

// StartAndConnect starts `daemon` with `args` and connects to it; null (the benchmark
// failed, saying why) if either does not happen.
std::unique_ptr<Client> StartAndConnect(benchmark::State& state, Daemon& daemon,
                                        const std::vector<std::string>& args,
                                        const std::string& log) {
  if (!daemon.Start(args, log)) {
    Fail(state, "turbined did not start");
    return nullptr;
  }
  std::unique_ptr<Client> client = daemon.Connect();
  if (client == nullptr) Fail(state, "no connection");
  return client;
}

void FileVersions(benchmark::State& state, uint64_t versions) {
  ScratchDir dir;
  const std::string data = dir.str() + "/data";
  const std::string path = dir.str() + "/big.txt";
  for (auto _ : state) {
    Daemon daemon;
    std::unique_ptr<Client> client = StartAndConnect(
        state, daemon, {"--data-dir", data, "--gc-interval", "0"}, dir.str() + "/turbined.log");
    if (client == nullptr) return;
    for (uint64_t version = 0; version < versions; ++version) {
      const int64_t lines = WriteText(path, 1000 + version, static_cast<int>(version));
      // A file younger than a second is read directly every time and never cached under its
      // signature: wait that second, as an editor saving every few seconds would.
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));
      absl::StatusOr<CallResult> read = client->Call("text.lines", {Str(path)});
      if (!read.ok() || !read->value.ok() || read->value->int_value() != lines) {
        Fail(state, "text.lines of version " + std::to_string(version));
        return;
      }
    }
    absl::StatusOr<uint64_t> flushed = client->Flush();
    absl::StatusOr<v1::CollectGarbageReply> gc = client->CollectGarbage();
    const uint64_t peak_rss = daemon.PeakRss();
    if (!flushed.ok() || !gc.ok() || daemon.Stop() != 0) {
      Fail(state, "Flush, CollectGarbage or the stop failed");
      return;
    }
    state.counters["versions"] = static_cast<double>(versions);
    state.counters["store_bytes_before_gc"] = static_cast<double>(gc->bytes_before());
    state.counters["store_bytes_after_gc"] = static_cast<double>(gc->bytes_after());
    state.counters["data_dir_bytes_after_gc"] = static_cast<double>(DiskBytes(data));
    state.counters["removed_tasks"] = static_cast<double>(gc->removed_tasks());
    state.counters["gc_ms"] = static_cast<double>(gc->micros()) / 1000.0;
    state.counters["versions_left"] =
        static_cast<double>(turbine::testing::StoredTasksOf(data + "/db", "fs.content"));
    state.counters["peak_rss_bytes"] = static_cast<double>(peak_rss);
  }
}

void UnsetInputs(benchmark::State& state, uint64_t inputs, uint64_t limit_mib) {
  ScratchDir dir;
  const std::string data = dir.str() + "/data";
  constexpr uint64_t kBatch = 10'000;
  for (auto _ : state) {
    Daemon daemon;
    std::vector<std::string> args = {"--data-dir", data, "--gc-interval", "0"};
    if (limit_mib > 0) {
      args.push_back("--memory-limit");
      args.push_back(std::to_string(limit_mib) + "M");
    }
    std::unique_ptr<Client> client =
        StartAndConnect(state, daemon, args, dir.str() + "/turbined.log");
    if (client == nullptr) return;
    const auto tasks_now = [&] {
      absl::StatusOr<v1::StatsReply> stats = client->Stats();
      return stats.ok() ? static_cast<double>(stats->tasks()) : -1.0;
    };
    for (const bool unset : {false, true}) {
      for (uint64_t from = 0; from < inputs; from += kBatch) {
        std::vector<std::pair<std::string, v1::Value>> values;
        std::vector<std::string> keys;
        for (uint64_t k = from; k < std::min(inputs, from + kBatch); ++k) {
          keys.push_back("key-" + std::to_string(k));
          if (!unset) values.emplace_back(keys.back(), Int(static_cast<int64_t>(k)));
        }
        const bool done = unset ? client->DeleteInputs(std::move(keys)).ok()
                                : client->SetInputs(std::move(values)).ok();
        if (!done) {
          Fail(state, unset ? "DeleteInputs failed" : "SetInputs failed");
          return;
        }
      }
      const std::string step = unset ? "unset" : "set";
      state.counters["rss_bytes_after_" + step] = static_cast<double>(daemon.Rss());
      state.counters["tasks_in_memory_after_" + step] = tasks_now();
    }
    // The first pass takes the unset inputs out of memory, the second removes their records.
    absl::StatusOr<v1::CollectGarbageReply> first = client->CollectGarbage();
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the evictor frees what left
    state.counters["rss_bytes_after_gc"] = static_cast<double>(daemon.Rss());
    state.counters["tasks_in_memory_after_gc"] = tasks_now();
    absl::StatusOr<v1::CollectGarbageReply> gc = client->CollectGarbage();
    if (!first.ok() || !gc.ok()) {
      Fail(state, "CollectGarbage failed");
      return;
    }
    state.counters["removed_tasks_first_pass"] = static_cast<double>(first->removed_tasks());
    state.counters["peak_rss_bytes"] = static_cast<double>(daemon.PeakRss());
    if (daemon.Stop() != 0) {
      Fail(state, "the stop failed");
      return;
    }
    state.counters["inputs"] = static_cast<double>(inputs);
    state.counters["store_bytes_before_gc"] = static_cast<double>(first->bytes_before());
    state.counters["store_bytes_after_gc"] = static_cast<double>(gc->bytes_after());
    state.counters["removed_tasks"] = static_cast<double>(gc->removed_tasks());
    state.counters["gc_ms"] = static_cast<double>(gc->micros()) / 1000.0;
    state.counters["input_records_left"] =
        static_cast<double>(turbine::testing::StoredTasksOf(data + "/db", "turbine.input"));
  }
}

// Percentile sorts `ns` and returns its p-th percentile (0 if empty).
uint64_t Percentile(std::vector<uint64_t>& ns, double p) {
  if (ns.empty()) return 0;
  std::sort(ns.begin(), ns.end());
  return ns[std::min(ns.size() - 1, static_cast<size_t>(p * static_cast<double>(ns.size())))];
}

// Latencies of unary calls, in nanoseconds: all of them, and those answered from the store
// (source disk), which compare like with like across idle and a pass.
struct Latencies {
  std::vector<uint64_t> ns;
  std::vector<uint64_t> disk_ns;
  uint64_t executed = 0;
  uint64_t Percentile(double p) { return bench::Percentile(ns, p); }
};

// TimeCall times one demo.busy(k, 0); false if it failed or answered wrong.
bool TimeCall(Client& client, int64_t k, Latencies* latencies) {
  const auto start = Clock::now();
  absl::StatusOr<CallResult> got = client.Call("demo.busy", {Int(k), Int(0)});
  latencies->ns.push_back(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
  if (!got.ok() || !got->value.ok() || got->value->int_value() != k) return false;
  latencies->executed += got->source == v1::SOURCE_EXECUTED ? 1 : 0;
  if (got->source == v1::SOURCE_DISK) latencies->disk_ns.push_back(latencies->ns.back());
  return true;
}

void GcPause(benchmark::State& state, uint64_t tasks) {
  ScratchDir dir;
  const std::string data = dir.str() + "/data";
  const std::string log = dir.str() + "/turbined.log";
  for (auto _ : state) {
    {
      Daemon filler;
      std::string error;
      Sources sources;
      std::unique_ptr<Client> client;
      if (!filler.Start({"--data-dir", data, "--gc-interval", "0"}, log) ||
          (client = filler.Connect()) == nullptr || !CallAll(*client, tasks, &sources, &error) ||
          !client->Flush().ok() || filler.Stop() != 0) {
        Fail(state, "filling the store: " + error);
        return;
      }
    }
    // Every task is garbage under a one-byte disk limit; no pass runs until asked for.
    Daemon daemon;
    if (!daemon.Start({"--data-dir", data, "--gc-interval", "0", "--disk-limit", "1"}, log)) {
      Fail(state, "turbined did not restart");
      return;
    }
    std::unique_ptr<Client> client = daemon.Connect();
    if (client == nullptr) {
      Fail(state, "no connection");
      return;
    }
    // Idle: a tenth of the tasks (at most 10,000), each restored from the store.
    const int64_t idle_calls = static_cast<int64_t>(std::min<uint64_t>(tasks / 10, 10000));
    Latencies idle;
    for (int64_t k = 0; k < idle_calls; ++k) {
      if (!TimeCall(*client, k, &idle)) {
        Fail(state, "idle call failed");
        return;
      }
    }
    // During a pass: the next tasks, one call after another until the pass returns. A call
    // finds its task on disk or, once the pass removed it, executes it: both read the store.
    const uint64_t peak_rss_before_gc = daemon.PeakRss();
    std::atomic<bool> collecting{true};
    absl::StatusOr<v1::CollectGarbageReply> gc;
    std::thread collector([&] {
      gc = client->CollectGarbage();
      collecting = false;
    });
    Latencies during;
    bool failed = false;
    for (int64_t k = idle_calls; collecting && k < static_cast<int64_t>(tasks) && !failed; ++k) {
      failed = !TimeCall(*client, k, &during);
    }
    collector.join();
    const uint64_t peak_rss = daemon.PeakRss();
    if (failed || !gc.ok() || daemon.Stop() != 0) {
      Fail(state, "a call or the pass failed");
      return;
    }
    state.counters["tasks"] = static_cast<double>(tasks);
    state.counters["removed_tasks"] = static_cast<double>(gc->removed_tasks());
    state.counters["gc_ms"] = static_cast<double>(gc->micros()) / 1000.0;
    state.counters["calls_idle"] = static_cast<double>(idle.ns.size());
    state.counters["calls_during_gc"] = static_cast<double>(during.ns.size());
    state.counters["executed_during_gc"] = static_cast<double>(during.executed);
    state.counters["call_p50_ns_idle"] = static_cast<double>(idle.Percentile(0.5));
    state.counters["call_p99_ns_idle"] = static_cast<double>(idle.Percentile(0.99));
    state.counters["call_max_ns_idle"] = static_cast<double>(idle.Percentile(1.0));
    state.counters["call_p50_ns_during_gc"] = static_cast<double>(during.Percentile(0.5));
    state.counters["call_p99_ns_during_gc"] = static_cast<double>(during.Percentile(0.99));
    state.counters["call_max_ns_during_gc"] = static_cast<double>(during.Percentile(1.0));
    state.counters["disk_call_p99_ns_idle"] = static_cast<double>(Percentile(idle.disk_ns, 0.99));
    state.counters["disk_call_p99_ns_during_gc"] =
        static_cast<double>(Percentile(during.disk_ns, 0.99));
    state.counters["peak_rss_bytes"] = static_cast<double>(peak_rss);
    state.counters["peak_rss_before_gc_bytes"] = static_cast<double>(peak_rss_before_gc);
  }
}

void Register() {
  const uint64_t tasks = EnvOr("TURBINE_LIFECYCLE_TASKS", 300000);
  const uint64_t versions = EnvOr("TURBINE_LIFECYCLE_VERSIONS", 15);
  const std::string n = std::to_string(tasks);
  for (const uint64_t limit_mib : {uint64_t{96}, uint64_t{0}}) {
    benchmark::RegisterBenchmark(
        ("lifecycle/distinct-calls/" + n + "/limit_mib:" + std::to_string(limit_mib)).c_str(),
        [=](benchmark::State& state) { DistinctCalls(state, tasks, limit_mib); })
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark(("lifecycle/file-versions/" + std::to_string(versions)).c_str(),
                               [=](benchmark::State& state) { FileVersions(state, versions); })
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  for (const bool settle : {true, false}) {
    benchmark::RegisterBenchmark(
        ("lifecycle/killed-idle/" + n + "/settle:" + (settle ? "1" : "0")).c_str(),
        [=](benchmark::State& state) { KilledIdle(state, tasks, settle); })
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  for (const uint64_t limit_mib : {uint64_t{96}, uint64_t{0}}) {
    benchmark::RegisterBenchmark(
        ("lifecycle/unset-inputs/" + n + "/limit_mib:" + std::to_string(limit_mib)).c_str(),
        [=](benchmark::State& state) { UnsetInputs(state, tasks, limit_mib); })
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark(("lifecycle/gc-pause/" + n).c_str(),
                               [=](benchmark::State& state) { GcPause(state, tasks); })
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace turbine::bench

int main(int argc, char** argv) {
  turbine::bench::Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return turbine::bench::failed ? 1 : 0;
}
