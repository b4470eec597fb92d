// request_parsing.h — parsing requests ourselves, to say why one is not valid.
//
// gRPC's generated service parses each request before the handler runs, and answers one
// it cannot parse with a bare UNIMPLEMENTED: the client cannot tell a typo'd method from a
// string that is not UTF-8 or values nested past protobuf's recursion limit. So the
// service registers its methods with raw request bytes (TurbineService::
// ParseRequestsOurselves, request_parsing.cc) and parses them here: a request that does
// not parse is INVALID_ARGUMENT with the reason, naming the field at fault. The reply side
// stays typed, and a valid request costs the same parse as before.
#pragma once

#include <absl/status/status.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::server {

// kProtobufNestingLimit is protobuf's default recursion limit: messages nested deeper do
// not parse (a Value list inside a list costs two levels, so 49 lists inside one another
// is the deepest argument).
inline constexpr int kProtobufNestingLimit = 100;

// kMaxCallsPerBatch bounds a CallBatch: its calls start before any reply is written, so a
// batch is what the stream's flow control (reply_budget.h) cannot split.
inline constexpr size_t kMaxCallsPerBatch = 10'000;

// ParseRequest parses `bytes` into `out`; INVALID_ARGUMENT saying why if they are not a
// valid message of its type.
absl::Status ParseRequest(const grpc::ByteBuffer& bytes, google::protobuf::Message* out);
absl::Status ParseRequest(std::string_view bytes, google::protobuf::Message* out);

// UnparsedCallId digs the `id` (field 5) out of a CallRequest that did not parse, so that
// the stream's error reply can still be matched to the call; 0 if it cannot be found.
uint64_t UnparsedCallId(const grpc::ByteBuffer& bytes);
uint64_t UnparsedCallId(std::string_view bytes);

// FlattenRequest copies a request's bytes into one string.
std::string FlattenRequest(const grpc::ByteBuffer& bytes);

// SplitCallBatch finds the bytes of each call in a CallBatch without parsing them, so each
// call is parsed, and fails, on its own (a CallBatch's `calls` are length-delimited
// CallRequests). INVALID_ARGUMENT if the batch itself is malformed or holds more than
// kMaxCallsPerBatch calls.
absl::Status SplitCallBatch(std::string_view batch, std::vector<std::string_view>* calls);

}  // namespace turbine::server
