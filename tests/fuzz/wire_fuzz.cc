// wire_fuzz.cc — Wire<T>::From over arbitrary protocol values (the fuzz bytes, parsed as a
// turbine.v1.Value): every conversion fails cleanly or succeeds, and a converted value
// converts back to a wire value that reads back to the same thing.
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "turbine/server/wire.h"

namespace {

using turbine::server::Wire;

struct Point {
  int64_t x = 0;
  std::optional<std::string> label;
  std::vector<double> weights;
  bool operator==(const Point&) const = default;
  static constexpr std::string_view kTypeName = "fuzz.Point";
  static constexpr auto kFields =
      std::make_tuple(turbine::field("x", &Point::x), turbine::field("label", &Point::label),
                      turbine::field("weights", &Point::weights));
};

// RoundTripSupported converts `in` to T; if that works, T back to the wire must read as the
// same T (compared by its wire bytes, so NaNs compare by bits).
template <class T>
void RoundTripSupported(const turbine::v1::Value& in) {
  T value{};
  if (!Wire<T>::From(in, &value).ok()) return;
  turbine::v1::Value wire;
  Wire<T>::To(value, &wire);
  T again{};
  FUZZ_CHECK(Wire<T>::From(wire, &again).ok());
  turbine::v1::Value wire_again;
  Wire<T>::To(again, &wire_again);
  FUZZ_CHECK(wire.SerializeAsString() == wire_again.SerializeAsString());
}

template <class T>
void RoundTrip(const turbine::v1::Value& in) {
  // clang 14 does not take wire.h's Wire specialization for structs with kFields (the fuzz
  // build uses clang; GCC takes it): nothing to check for Point there.
  if constexpr (turbine::server::WireConvertible<T>) RoundTripSupported<T>(in);
}

// Protobuf logs every string that is not UTF-8 as it rejects it: noise at this rate.
const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  turbine::v1::Value in;
  if (!in.ParseFromArray(data, static_cast<int>(size))) return 0;
  RoundTrip<bool>(in);
  RoundTrip<int32_t>(in);
  RoundTrip<uint32_t>(in);
  RoundTrip<int64_t>(in);
  RoundTrip<uint64_t>(in);
  RoundTrip<double>(in);
  RoundTrip<std::string>(in);
  RoundTrip<turbine::Bytes>(in);
  RoundTrip<std::vector<int64_t>>(in);
  RoundTrip<std::optional<std::vector<std::string>>>(in);
  RoundTrip<std::map<std::string, std::vector<double>>>(in);
  RoundTrip<turbine::Vc<int64_t>>(in);
  RoundTrip<turbine::ResolvedVc<std::string>>(in);
  RoundTrip<Point>(in);
  RoundTrip<std::vector<Point>>(in);
  RoundTrip<turbine::WireValue>(in);

  // A WireValue is also stored (an input's value): its encoding must read back.
  turbine::WireValue value;
  if (Wire<turbine::WireValue>::From(in, &value).ok()) {
    std::string bytes;
    turbine::EncodeValue(value, &bytes);
    turbine::WireValue decoded;
    FUZZ_CHECK(turbine::DecodeValue(bytes, &decoded));
    std::string bytes_again;
    turbine::EncodeValue(decoded, &bytes_again);
    FUZZ_CHECK(bytes == bytes_again);
    FUZZ_CHECK(turbine::HashValue(value, 1) == turbine::HashValue(decoded, 1));
  }
  return 0;
}
