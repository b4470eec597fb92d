// file_signature.h — what a file's stat says about its content, and reading content that
// must match it. Shared by fs.read and tree.file, which both cache per-file work under the
// signature so that a restarted daemon re-checks a file with one lstat.
#pragma once

#include <absl/status/status.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "turbine/value_type.h"

namespace turbine::stdlib {

// FileSignature changes whenever the content may have: any write changes ctime, a file
// replaced by another changes the inode, one on another filesystem mounted at the path the
// device (two images built reproducibly share inodes and times).
struct FileSignature {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t inode = 0;
  int64_t device = 0;
  bool operator==(const FileSignature&) const = default;
};

FileSignature SignatureOf(const struct stat& st);

// IsRacy: the signature is younger than the racy window (1 s). Within one timestamp tick
// two writes can leave the same mtime and ctime, so a young signature does not pin the
// content; callers read such files every time instead of caching under the signature.
bool IsRacy(const FileSignature& signature);

// ReadFileAt reads the regular file at `path`, failing the running task (as `function`)
// if it is not the version `expected` describes (it changed after the caller's stat; the
// watcher then invalidates the caller, which asks again under the new signature).
Bytes ReadFileAt(const std::string& path, const FileSignature& expected,
                 std::string_view function);

// ErrnoCode is the status code a failed system call's errno gives a task's error: out of
// descriptors or memory RESOURCE_EXHAUSTED, an I/O error or a stale or busy file
// UNAVAILABLE (both transient: the engine does not keep such a failure, turbine/error.h),
// anything else (a missing file, say) UNKNOWN, kept like a value.
absl::StatusCode ErrnoCode(int error);
// FailErrno fails the running task with "function: path: strerror(error)" and ErrnoCode.
[[noreturn]] void FailErrno(std::string_view function, const std::string& path, int error);

}  // namespace turbine::stdlib
