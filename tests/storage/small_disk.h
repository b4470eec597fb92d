// small_disk.h — a real, small filesystem (a tmpfs) to fill up, for full-disk tests.
//
// Mounting needs root (CI runs as root); elsewhere the test skips and prints why.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace turbine::testing {

class SmallDisk {
 public:
  explicit SmallDisk(size_t bytes) {
    static int next = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("turbine-disk-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
    if (::geteuid() != 0) {
      why_not_ = "mounting a small tmpfs to fill needs root";
      return;
    }
    std::filesystem::create_directories(path_);
    const std::string size = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, size.c_str()) != 0) {
      why_not_ = "cannot mount a tmpfs at " + path_.string() + ": " + std::strerror(errno);
      std::filesystem::remove(path_);
      return;
    }
    mounted_ = true;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

  // Fill appends to the file `name` until the disk is full or `max_bytes` are written, and
  // returns how many bytes it wrote.
  size_t Fill(const std::string& name, size_t max_bytes = SIZE_MAX) {
    const int fd = ::open((path_ / name).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    const std::vector<char> chunk(64 << 10, 'x');
    size_t written = 0;
    while (written < max_bytes) {
      const ssize_t n = ::write(fd, chunk.data(), std::min(chunk.size(), max_bytes - written));
      if (n <= 0) break;  // ENOSPC: full
      written += static_cast<size_t>(n);
    }
    ::close(fd);
    return written;
  }
  void Free(const std::string& name) { std::filesystem::remove(path_ / name); }
  // LeaveFree fills the file "ballast" until about `bytes` are left free; false if no more
  // than that were free already.
  bool LeaveFree(size_t bytes) {
    struct statvfs disk {};
    if (::statvfs(path_.c_str(), &disk) != 0) return false;
    const size_t free_bytes = static_cast<size_t>(disk.f_bavail) * disk.f_frsize;
    return free_bytes > bytes && Fill("ballast", free_bytes - bytes) > 0;
  }

 private:
  std::filesystem::path path_;
  bool mounted_ = false;
  std::string why_not_;
};

// Incompressible is `size` bytes that do not compress, different for each n: what fills a
// small disk as fast as it is written.
inline std::string Incompressible(int64_t n, size_t size) {
  std::string bytes(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(n + 1);
  for (char& c : bytes) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  return bytes;
}

// LogBytes is what RocksDB's write-ahead log files take under `dir` (never throws: a log
// deleted while listing counts nothing).
inline uint64_t LogBytes(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::error_code size_error;
    if (it->path().extension() == ".log") bytes += it->file_size(size_error);
  }
  return bytes;
}

}  // namespace turbine::testing
