// why_output.h — `turbine why`: the steps of a WhyReply as indented text or JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "turbine/v1/turbine.pb.h"

namespace turbine::cli {

// WhyJson: {"root":12,"truncated":false,"steps":[{"depth":0,"kind":"executed","task":12,
// "function":…,"args":…,"reason":"dependency changed","cause":11,…,"text":…}]}.
nlohmann::json WhyJson(const v1::WhyReply& why);

// WhyText: per step, "fn(args) @id" and under it the explanation, and the last
// execution's duration and time when known; a step's causes are indented under it.
std::string WhyText(const v1::WhyReply& why);

}  // namespace turbine::cli
