#include "why_output.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/time/time.h>

#include <algorithm>
#include <climits>

namespace turbine::cli {
namespace {

const char* KindName(v1::WhyStepKind kind) {
  switch (kind) {
    case v1::WHY_STEP_KIND_EXECUTED:
      return "executed";
    case v1::WHY_STEP_KIND_INPUT:
      return "input";
    case v1::WHY_STEP_KIND_RESTORED:
      return "restored";
    case v1::WHY_STEP_KIND_NOT_RUN:
      return "not run";
    case v1::WHY_STEP_KIND_GONE:
      return "gone";
    case v1::WHY_STEP_KIND_CUTOFF:
      return "cutoff";
    case v1::WHY_STEP_KIND_SHARED:
      return "shared";
    default:
      return "unknown";
  }
}

// The names of the engine's reasons (turbine/why.h, ReasonName).
const char* ReasonName(v1::WhyReason reason) {
  switch (reason) {
    case v1::WHY_REASON_FIRST_EXECUTION:
      return "first execution";
    case v1::WHY_REASON_DEPENDENCY_CHANGED:
      return "dependency changed";
    case v1::WHY_REASON_INVALIDATED:
      return "invalidated";
    case v1::WHY_REASON_RESTART:
      return "restart re-validation";
    case v1::WHY_REASON_GARBAGE_COLLECTED:
      return "garbage collected";
    case v1::WHY_REASON_CYCLE_CHANGED:
      return "cycle changed";
    case v1::WHY_REASON_RETRY:
      return "retry after a transient error";
    default:
      return "not executed";
  }
}

std::string Duration(uint64_t micros) {
  if (micros < 1000) return absl::StrCat(micros, " µs");
  if (micros < 1000000) return absl::StrFormat("%.1f ms", static_cast<double>(micros) / 1e3);
  return absl::StrFormat("%.1f s", static_cast<double>(micros) / 1e6);
}

}  // namespace

nlohmann::json WhyJson(const v1::WhyReply& why) {
  nlohmann::json steps = nlohmann::json::array();
  for (const v1::WhyStep& step : why.steps()) {
    nlohmann::json out = {
        {"depth", step.depth()},
        {"kind", KindName(step.kind())},
        {"task", step.task()},
        {"function", step.function()},
        {"version", step.version()},
        {"args", step.args()},
        {"reason", ReasonName(step.reason())},
        {"dirty", step.dirty()},
        {"executions", step.executions()},
        {"output_changed", step.output_changed()},
        {"output_before", step.output_before()},
        {"output_after", step.output_after()},
        {"text", step.text()},
    };
    // Every documented key on every step: null where the step has none (no cause, or no
    // execution to time), so a reader need not ask whether a key is there.
    out["cause"] = step.cause() != 0 ? nlohmann::json(step.cause()) : nlohmann::json();
    out["receiver"] = step.receiver() != 0 ? nlohmann::json(step.receiver()) : nlohmann::json();
    // An input's change has a time and no duration (nothing executed).
    const bool timed = step.end_unix_micros() != 0;
    const bool took = timed && step.kind() != v1::WHY_STEP_KIND_INPUT;
    out["end_unix_micros"] = timed ? nlohmann::json(step.end_unix_micros()) : nlohmann::json();
    out["duration_micros"] = took ? nlohmann::json(step.duration_micros()) : nlohmann::json();
    steps.push_back(std::move(out));
  }
  return {{"root", why.root()}, {"truncated", why.truncated()}, {"steps", std::move(steps)}};
}

std::string WhyText(const v1::WhyReply& why, uint32_t max_steps) {
  std::string text;
  for (const v1::WhyStep& step : why.steps()) {
    // Two spaces a level, up to a bound: a chain of 20,000 causes would take gigabytes of
    // spaces. Deeper steps say their depth.
    constexpr uint32_t kIndentedLevels = 40;
    const std::string indent =
        step.depth() <= kIndentedLevels
            ? std::string(2 * step.depth(), ' ')
            : absl::StrCat(std::string(2 * kIndentedLevels, ' '), "[depth ", step.depth(), "] ");
    if (step.kind() == v1::WHY_STEP_KIND_GONE) {
      absl::StrAppend(&text, indent, step.text(), "\n");
      continue;
    }
    absl::StrAppend(&text, indent, step.function(), "(", step.args(), ")",
                    step.receiver() != 0 ? absl::StrCat(" on @", step.receiver()) : "", " @",
                    step.task(), "\n");
    absl::StrAppend(&text, indent, "  ", step.text(), "\n");
    if (step.end_unix_micros() != 0) {
      const absl::Time at = absl::FromUnixMicros(step.end_unix_micros());
      if (step.kind() == v1::WHY_STEP_KIND_INPUT) {
        absl::StrAppend(&text, indent, "  changed at ",
                        absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC", at, absl::UTCTimeZone()), "\n");
      } else if (step.kind() == v1::WHY_STEP_KIND_SHARED) {
        absl::StrAppend(&text, indent, "  adopted in ", Duration(step.duration_micros()),
                        ", at ",
                        absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC", at, absl::UTCTimeZone()), "\n");
      } else {
        absl::StrAppend(&text, indent, "  took ", Duration(step.duration_micros()), ", ended at ",
                        absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC", at, absl::UTCTimeZone()),
                        " (execution ", step.executions(), " in this daemon)\n");
      }
    }
  }
  if (why.truncated()) {
    const int asked = max_steps == 0 ? 64 : static_cast<int>(std::min<uint32_t>(max_steps, INT32_MAX));
    text += why.steps_size() < asked
                ? "(more causes left out: the answer reached the size of one reply of the "
                  "daemon, its --max-message-bytes)\n"
                : "(more causes left out: raise --max-steps)\n";
  }
  return text;
}

}  // namespace turbine::cli
