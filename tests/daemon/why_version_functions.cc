// why_version_functions.cc — the functions of the version-bump test daemons: turbined with
// test.why.label at version TEST_LABEL_VERSION (turbined_why_v1, turbined_why_v2) and
// test.why.caller, which is the same in both and reads it.
#include <string>

#include "turbine/engine.h"
#include "turbine/server/export.h"

namespace {

using turbine::Task;

Task<std::string> LabelImpl(int64_t n) {
  co_return "v" + std::to_string(TEST_LABEL_VERSION) + ":" + std::to_string(n);
}
const turbine::Function<LabelImpl> label{"test.why.label", TEST_LABEL_VERSION};

Task<std::string> CallerImpl(int64_t n) { co_return "[" + co_await label(n) + "]"; }
const turbine::Function<CallerImpl> caller{"test.why.caller", 1};

const turbine::server::Export export_label{label, {"n"}};
const turbine::server::Export export_caller{caller, {"n"}};

}  // namespace
