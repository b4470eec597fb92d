// file_signature.cc — stat signatures and reading content that matches one.
#include "file_signature.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "turbine/cancel.h"
#include "turbine/error.h"
#include "turbine/text.h"

namespace turbine::stdlib {
namespace {

constexpr int64_t kRacyWindowNs = 1'000'000'000;
// A file is read this much at a time, with a cancellation check between reads.
constexpr size_t kReadChunkBytes = 1 << 20;

int64_t Nanos(const timespec& time) {
  return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

// Fd closes a file descriptor when the read ends, however it ends (Fail throws).
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

absl::StatusCode ErrnoCode(int error) {
  switch (error) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
      return absl::StatusCode::kResourceExhausted;
    case EIO:
    case EAGAIN:
    case EINTR:
    case EBUSY:
    case ESTALE:
    case ETIMEDOUT:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

void FailErrno(std::string_view function, const std::string& path, int error) {
  Fail(std::string(function) + ": " + Echo(path) + ": " + std::strerror(error), ErrnoCode(error));
}

FileSignature SignatureOf(const struct stat& st) {
  return {st.st_size, Nanos(st.st_mtim), Nanos(st.st_ctim), static_cast<int64_t>(st.st_ino),
          static_cast<int64_t>(st.st_dev)};
}

bool IsRacy(const FileSignature& signature) {
  // The clock the kernel stamps files with: the precise one runs up to a tick ahead of it,
  // and a file changed after this moment could then still get a time inside the window.
  timespec now{};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return Nanos(now) - std::max(signature.mtime_ns, signature.ctime_ns) < kRacyWindowNs;
}

Bytes ReadFileAt(const std::string& path, const FileSignature& expected,
                 std::string_view function) {
  // Non-blocking: a FIFO put where the file was would otherwise hold a worker in open()
  // until something writes to it. Reads of a regular file do not heed the flag.
  const Fd file{open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (file.fd < 0) FailErrno(function, path, errno);
  struct stat before {};
  if (fstat(file.fd, &before) != 0) FailErrno(function, path, errno);
  const std::string changed = std::string(function) + ": " + path + " changed while being read";
  if (SignatureOf(before) != expected) Fail(changed);
  Bytes bytes;
  bytes.data.resize(static_cast<size_t>(before.st_size));
  size_t filled = 0;
  // Its size, then one read more: anything there means it grew, and the read stops. A
  // kernel file that says it is empty (/proc/self/pagemap) can be read for hundreds of
  // gigabytes: reading on to the end held them all in memory.
  char past_the_end[4096];
  while (true) {
    ThrowIfCancelled();  // between chunks: a big file need not be read for nobody
    const bool probing = filled == bytes.data.size();
    const size_t chunk = std::min<size_t>(bytes.data.size() - filled, kReadChunkBytes);
    const ssize_t got = probing ? read(file.fd, past_the_end, sizeof(past_the_end))
                                : read(file.fd, bytes.data.data() + filled, chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) FailErrno(function, path, errno);
    if (got == 0) break;
    if (probing) Fail(changed);
    filled += static_cast<size_t>(got);
  }
  bytes.data.resize(filled);
  struct stat after {};
  if (fstat(file.fd, &after) != 0) FailErrno(function, path, errno);
  if (SignatureOf(after) != expected || filled != static_cast<size_t>(expected.size)) {
    Fail(changed);
  }
  return bytes;
}

}  // namespace turbine::stdlib
