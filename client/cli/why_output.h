// why_output.h — `turbine why`: the steps of a WhyReply as indented text or JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <cstdint>
#include <string>

#include "turbine/v1/turbine.pb.h"

namespace turbine::cli {

// WhyJson: {"root":12,"truncated":false,"steps":[{"depth":0,"kind":"executed","task":12,
// "function":…,"args":…,"reason":"dependency changed","cause":11,…,"text":…}]}.
nlohmann::json WhyJson(const v1::WhyReply& why);

// WhyText: per step, "fn(args) @id" and under it the explanation, and the last
// execution's duration and time when known; a step's causes are indented under it.
// `max_steps` is what was asked (0: the daemon's default, 64): an answer cut short with
// fewer steps than that was cut by the size of one reply, not by the steps asked for.
std::string WhyText(const v1::WhyReply& why, uint32_t max_steps = 0);

}  // namespace turbine::cli
