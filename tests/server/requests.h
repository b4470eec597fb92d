// requests.h — building protocol requests in tests.
#pragma once

#include <string>
#include <vector>

#include "turbine/v1/turbine.pb.h"

namespace turbine::testing {

inline v1::Value Int(int64_t value) {
  v1::Value out;
  out.set_int_value(value);
  return out;
}
inline v1::Value Str(const std::string& value) {
  v1::Value out;
  out.set_string_value(value);
  return out;
}

inline v1::CallRequest Request(const std::string& function, std::vector<v1::Value> args = {}) {
  v1::CallRequest request;
  request.set_function(function);
  for (v1::Value& arg : args) *request.add_args() = std::move(arg);
  return request;
}

}  // namespace turbine::testing
