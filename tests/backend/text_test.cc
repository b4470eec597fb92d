// text.h: what is UTF-8, how other bytes are escaped, and how long input is echoed.
#include "turbine/text.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using turbine::Echo;
using turbine::EscapeInvalidUtf8;
using turbine::IsValidUtf8;

TEST(Text, ValidUtf8IsWhatProtobufAccepts) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsValidUtf8("bad\xff\xfename"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // cut short
}

TEST(Text, InvalidBytesAreEscapedAndValidTextIsKept) {
  EXPECT_EQ(EscapeInvalidUtf8("bad\xff\xfename"), "bad\\xff\\xfename");
  EXPECT_EQ(EscapeInvalidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(EscapeInvalidUtf8("\xe2\x82x"), "\\xe2\\x82x");
  EXPECT_TRUE(IsValidUtf8(EscapeInvalidUtf8("\x80\xbf\xc3")));
}

TEST(Text, EchoCutsLongInputAtACharacterBoundary) {
  EXPECT_EQ(Echo("short"), "short");
  const std::string exact(turbine::kEchoLimit, 'a');
  EXPECT_EQ(Echo(exact), exact);
  const std::string long_key(1 << 20, 'k');
  EXPECT_EQ(Echo(long_key), std::string(turbine::kEchoLimit, 'k') + "...(1048576 bytes)");
  // A two-byte character straddling the limit is dropped whole, not cut in half.
  const std::string straddling = std::string(turbine::kEchoLimit - 1, 'a') + "\xc3\xa9" + "tail";
  const std::string echoed = Echo(straddling);
  EXPECT_TRUE(IsValidUtf8(echoed));
  EXPECT_EQ(echoed.find("\\x"), std::string::npos) << echoed;
  EXPECT_TRUE(echoed.starts_with(std::string(turbine::kEchoLimit - 1, 'a') + "..."));
}

}  // namespace
