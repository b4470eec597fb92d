// read_now.h — reading a RawVc from a test thread through Engine::ReadAsync, as a server
// does, waiting for the answer.
#pragma once

#include <absl/status/status.h>

#include <future>

#include "turbine/engine.h"

namespace turbine::testing {

inline Engine::AsyncRead ReadNow(Engine& engine, RawVc vc) {
  std::promise<Engine::AsyncRead> answer;
  std::future<Engine::AsyncRead> result = answer.get_future();
  engine.ReadAsync(vc, [&answer](Engine::AsyncRead read) { answer.set_value(std::move(read)); });
  return result.get();
}

}  // namespace turbine::testing
