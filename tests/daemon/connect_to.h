// connect_to.h — a client of a test daemon, with a deadline long enough for a loaded machine.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "daemon_process.h"
#include "turbine/client/client.h"

namespace turbine::testing {

inline std::unique_ptr<client::Client> ConnectTo(const DaemonProcess& daemon) {
  auto client = client::Client::Connect(
      client::ConnectOptions{.address = daemon.address(), .deadline = std::chrono::seconds(120)});
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

}  // namespace turbine::testing
