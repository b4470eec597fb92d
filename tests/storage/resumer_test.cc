// The resumer runs RocksDB's resume, or a reopen of the database, on a thread of its own;
// writers wait for it a bounded time. The log names which one is late, and says when it
// returns.
#include "resumer.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <memory>
#include <sstream>
#include <thread>

namespace turbine::storage {
namespace {

// LogCapture sends the default logger to a string while it lives.
class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() {
    sink_->flush();
    return text_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

TEST(Resumer, ALateJobIsNamedWhenItIsLateAndWhenItReturns) {
  LogCapture log;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  {
    Resumer resumer(std::chrono::milliseconds(50));
    const absl::Status late = resumer.Run("reopen", [released] {
      released.wait();
      return absl::OkStatus();
    });
    EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable) << late;
    EXPECT_NE(log.text().find("the store's reopen after a failed write has not returned in"),
              std::string::npos)
        << log.text();
    release.set_value();
    for (int attempt = 0; attempt < 1000 && resumer.Running(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_FALSE(resumer.Running());
  }
  EXPECT_NE(log.text().find("the store's reopen returned: writes go on"), std::string::npos)
      << log.text();
  EXPECT_EQ(log.text().find("resume"), std::string::npos) << log.text();
}

TEST(Resumer, AJobThatReturnsInTimeIsNotLogged) {
  LogCapture log;
  Resumer resumer(std::chrono::milliseconds(5000));
  EXPECT_TRUE(resumer.Run("resume", [] { return absl::OkStatus(); }).ok());
  EXPECT_EQ(resumer.Run("resume", [] { return absl::ResourceExhaustedError("full"); }).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(log.text(), "");
}

}  // namespace
}  // namespace turbine::storage
