// OutageLog (outage_log.h): what the daemon says about the shared tier's faults.
#include "outage_log.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using turbine::internal::OutageLog;

TEST(OutageLog, TheFirstFailureAndEachNewReasonAreNewsNotTheSameAgain) {
  OutageLog outage;
  EXPECT_FALSE(outage.Worked());  // nothing had failed
  EXPECT_TRUE(outage.Failed(absl::UnavailableError("Server closed the connection")));
  EXPECT_FALSE(outage.Failed(absl::UnavailableError("Server closed the connection")));
  // It came back refusing the credentials: news, once.
  EXPECT_TRUE(outage.Failed(absl::PermissionDeniedError("refused AUTH: WRONGPASS")));
  EXPECT_FALSE(outage.Failed(absl::PermissionDeniedError("refused AUTH: WRONGPASS")));
  // A failure that did not try says nothing new.
  EXPECT_FALSE(outage.Failed(absl::UnavailableError("shared cache unreachable (retrying later)")));
  EXPECT_TRUE(outage.Worked());
  EXPECT_FALSE(outage.Worked());  // told once
  // A new outage starts over: the same reason is news again.
  EXPECT_TRUE(outage.Failed(absl::UnavailableError("Server closed the connection")));
}

TEST(OutageLog, AtMostEightReasonsAreToldPerOutage) {
  OutageLog outage;
  int told = 0;
  for (int i = 0; i < 100; ++i) {
    told += outage.Failed(absl::UnavailableError("node " + std::to_string(i) + " refused")) ? 1 : 0;
  }
  EXPECT_EQ(told, 8);
}

}  // namespace
