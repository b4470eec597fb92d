// OutageLog (outage_log.h): what the daemon says about the shared tier's faults.
#include "outage_log.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace {

using turbine::internal::OutageLog;

TEST(OutageLog, TheFirstFailureAndEachNewReasonAreNewsNotTheSameAgain) {
  int64_t now = 0;
  OutageLog outage([&now] { return now; });
  EXPECT_FALSE(outage.Worked());  // nothing had failed
  EXPECT_TRUE(outage.Failed(absl::UnavailableError("Server closed the connection")));
  EXPECT_FALSE(outage.Failed(absl::UnavailableError("Server closed the connection")));
  // It came back refusing the credentials: news, once.
  EXPECT_TRUE(outage.Failed(absl::PermissionDeniedError("refused AUTH: WRONGPASS")));
  EXPECT_FALSE(outage.Failed(absl::PermissionDeniedError("refused AUTH: WRONGPASS")));
  // A failure that did not try says nothing new.
  EXPECT_FALSE(outage.Failed(absl::UnavailableError("shared cache unreachable (retrying later)")));
  now += OutageLog::kSettleMillis;
  EXPECT_TRUE(outage.Worked());
  EXPECT_FALSE(outage.Worked());  // told once
  // A new outage starts over: the same reason is news again.
  EXPECT_TRUE(outage.Failed(absl::UnavailableError("Server closed the connection")));
}

// A service coming back fails and works by turns for a while (a cluster answers some
// slots before others): one outage, and one "works again" once a second has gone by
// without a failure. It was news at every turn, a thousand log lines a second.
TEST(OutageLog, AServiceThatWorksAndFailsByTurnsIsOneOutageUntilItSettles) {
  int64_t now = 0;
  OutageLog outage([&now] { return now; });
  int news = 0;
  news += outage.Failed(absl::UnavailableError("CLUSTERDOWN")) ? 1 : 0;
  for (int turn = 0; turn < 100; ++turn) {
    now += 3;
    news += outage.Worked() ? 1 : 0;
    news += outage.Failed(absl::UnavailableError("CLUSTERDOWN")) ? 1 : 0;
  }
  EXPECT_EQ(news, 1);  // the first failure only
  now += OutageLog::kSettleMillis - 1;
  EXPECT_FALSE(outage.Worked());
  now += 1;
  EXPECT_TRUE(outage.Worked());
  EXPECT_FALSE(outage.Worked());
}

// The messages of one outage differ in the node they name and in how the connection failed
// (refused, timed out): one reason. It was told at each, four lines for one cluster down.
TEST(OutageLog, AReasonIsAKindOfFailureNotItsMessage) {
  OutageLog outage;
  int told = 0;
  for (int i = 0; i < 100; ++i) {
    told += outage.Failed(absl::UnavailableError("node " + std::to_string(i) + " refused")) ? 1 : 0;
    told += outage.Failed(absl::DeadlineExceededError("shared cache call timed out")) ? 1 : 0;
  }
  EXPECT_EQ(told, 1);
  EXPECT_TRUE(outage.Failed(absl::PermissionDeniedError("refused AUTH")));
  EXPECT_TRUE(outage.Failed(absl::ResourceExhaustedError("OOM")));
  EXPECT_FALSE(outage.Failed(absl::PermissionDeniedError("refused AUTH: another user")));
}

}  // namespace
