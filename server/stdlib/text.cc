// text.cc — text.lines and text.digest, over fs.read.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fs.h"
#include "paths.h"
#include "turbine/hash.h"
#include "turbine/server/export.h"

namespace turbine::stdlib {
namespace {

Task<int64_t> LinesImpl(std::string path) {
  const Bytes bytes = co_await fs_read(NormalPath(path, "text.lines"));
  co_return static_cast<int64_t>(std::count(bytes.data.begin(), bytes.data.end(), '\n'));
}
const Function<LinesImpl> text_lines{"text.lines", 1, "the number of newlines in a file"};

Task<std::string> DigestImpl(std::string path) {
  const Bytes bytes = co_await fs_read(NormalPath(path, "text.digest"));
  char hex[17];
  std::snprintf(
      hex, sizeof hex, "%016llx",
      static_cast<unsigned long long>(HashBytes(bytes.data.data(), bytes.data.size(), 0)));
  co_return std::string(hex);
}
const Function<DigestImpl> text_digest{"text.digest", 1,
                                       "the XXH3-64 of a file's bytes, 16 hex digits"};

const server::Export export_lines{text_lines, {"path"}};
const server::Export export_digest{text_digest, {"path"}};

}  // namespace
}  // namespace turbine::stdlib
