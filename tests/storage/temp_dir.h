// temp_dir.h — a fresh directory per test under the system temp dir, removed afterwards.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace turbine::testing {

class TempDir {
 public:
  TempDir() : TempDir(std::filesystem::temp_directory_path()) {}
  // Under `base` instead, for a test that needs a particular filesystem.
  explicit TempDir(const std::filesystem::path& base) {
    static int next = 0;
    path_ = base / ("turbine-test-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string str() const { return path_.string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace turbine::testing
