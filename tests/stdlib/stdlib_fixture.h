// stdlib_fixture.h — a real file tree in a temp dir next to an in-process Server, and the
// calls the standard-library tests make against it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../backend/counting.h"
#include "../server/server_fixture.h"

namespace turbine::testing {

// Files is a directory tree the tests edit; paths are relative to its root.
class Files {
 public:
  Files() { std::filesystem::create_directories(root()); }
  // Under `base` (tree and data directory both), for a test that needs its filesystem.
  explicit Files(const std::filesystem::path& base) : dir_(base) {
    std::filesystem::create_directories(root());
  }
  std::string root() const { return dir_.str() + "/tree"; }
  std::string data_dir() const { return dir_.str() + "/data"; }
  std::string path(const std::string& relative) const { return root() + "/" + relative; }

  void Write(const std::string& relative, const std::string& content) const {
    std::filesystem::create_directories(std::filesystem::path(path(relative)).parent_path());
    std::ofstream out(path(relative), std::ios::binary | std::ios::trunc);
    out << content;
  }
  void Remove(const std::string& relative) const { std::filesystem::remove_all(path(relative)); }
  void Rename(const std::string& from, const std::string& to) const {
    std::filesystem::rename(path(from), path(to));
  }
  void MakeDir(const std::string& relative) const {
    std::filesystem::create_directories(path(relative));
  }
  // Link makes the symlink `relative` to `to` (taken as it is), replacing one there.
  void Link(const std::string& to, const std::string& relative) const {
    std::filesystem::remove(path(relative));
    std::filesystem::create_directories(std::filesystem::path(path(relative)).parent_path());
    std::filesystem::create_symlink(to, path(relative));
  }
  // LinkChain makes a/l1 -> ../b/l2 -> `to` (a path in the tree) and returns a/l1's path:
  // a chain whose middle link (b/l2) tests point elsewhere.
  std::string LinkChain(const std::string& to) const {
    Link(path(to), "b/l2");
    Link("../b/l2", "a/l1");
    return path("a/l1");
  }
  // AgePastRacyWindow waits until every file written so far is older than fs.read's racy
  // window (1 s), so that its stat signature is trusted across restarts (see fs.cc).
  static void AgePastRacyWindow() { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); }

 private:
  TempDir dir_;
};

inline v1::Value ValueList(const std::vector<std::string>& items) {
  v1::Value out;
  for (const std::string& item : items) out.mutable_list_value()->add_items()->set_string_value(item);
  return out;
}

// CallReply makes a call that must succeed as an RPC (the function may still fail).
inline v1::CallReply Call(LiveServer& live, const v1::CallRequest& request) {
  v1::CallReply reply;
  grpc::Status status = live.Call(request, &reply);
  EXPECT_TRUE(status.ok()) << request.function() << ": " << status.error_message();
  return reply;
}

// Text is the reply's bytes or string value, or "error: <message>".
inline std::string Text(const v1::CallReply& reply) {
  if (reply.has_error()) return "error: " + reply.error().message();
  if (reply.value().has_bytes_value()) return reply.value().bytes_value();
  return reply.value().string_value();
}

inline std::string ReadFile(LiveServer& live, const std::string& path) {
  return Text(Call(live, Request("fs.read", {Str(path)})));
}

// MapField is field `key` of a map value (the wire form of a struct).
inline v1::Value MapField(const v1::Value& value, const std::string& key) {
  for (const v1::MapEntry& entry : value.map_value().entries()) {
    if (entry.key() == key) return entry.value();
  }
  ADD_FAILURE() << "no field " << key << " in " << value.DebugString();
  return {};
}

// Eventually polls `condition` until it holds or 10 s pass: file changes reach the engine
// through the watcher's debounce, a few tens of milliseconds later.
template <class Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

}  // namespace turbine::testing
