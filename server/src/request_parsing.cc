// request_parsing.cc — parsing requests from their bytes, and why one does not parse
// (request_parsing.h); and the service's methods registered with raw requests.
#include "request_parsing.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <string>
#include <vector>

#include "service.h"
#include "turbine/text.h"
#include "watch.h"

namespace turbine::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

bool ReadVarint(std::string_view data, size_t* pos, uint64_t* out) {
  *out = 0;
  for (int shift = 0; shift < 64 && *pos < data.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(data[(*pos)++]);
    *out |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// WhyNotParsed walks a message that protobuf refused, without recursion (the input may
// nest millions of levels), and names the first reason it finds: a submessage nested past
// protobuf's limit, or a `string` field that is not UTF-8.
std::string WhyNotParsed(std::string_view data, const Descriptor* type) {
  struct Frame {
    const Descriptor* type;
    size_t end;
  };
  std::vector<Frame> stack{{type, data.size()}};
  size_t pos = 0;
  const std::string malformed =
      "the request is not a valid " + type->full_name() + " (malformed protobuf)";
  while (!stack.empty()) {
    const Frame frame = stack.back();
    if (pos == frame.end) {
      stack.pop_back();
      continue;
    }
    uint64_t tag = 0;
    if (!ReadVarint(data.substr(0, frame.end), &pos, &tag)) return malformed;
    const FieldDescriptor* field = frame.type->FindFieldByNumber(static_cast<int>(tag >> 3));
    uint64_t skip = 0;
    switch (tag & 7) {
      case 0: {
        uint64_t value = 0;
        if (!ReadVarint(data.substr(0, frame.end), &pos, &value)) return malformed;
        continue;
      }
      case 1:
        skip = 8;
        break;
      case 5:
        skip = 4;
        break;
      case 2: {
        if (!ReadVarint(data.substr(0, frame.end), &pos, &skip)) return malformed;
        if (skip > frame.end - pos) return malformed;
        if (field != nullptr && field->type() == FieldDescriptor::TYPE_MESSAGE) {
          if (stack.size() > kProtobufNestingLimit) {
            return "the request nests values too deeply: protobuf parses at most " +
                   std::to_string(kProtobufNestingLimit) +
                   " levels of messages (49 lists inside one another, or 33 maps)";
          }
          stack.push_back({field->message_type(), pos + skip});
          continue;
        }
        if (field != nullptr && field->type() == FieldDescriptor::TYPE_STRING &&
            !IsValidUtf8(data.substr(pos, skip))) {
          return "field " + field->full_name() +
                 " is not valid UTF-8 (a protobuf string must be; send other bytes, a file "
                 "name say, as bytes_value: a string parameter accepts them)";
        }
        break;
      }
      default:  // groups: the protocol has none
        return malformed;
    }
    if (skip > frame.end - pos) return malformed;
    pos += skip;
  }
  return malformed;
}

// FailedWatch answers a Watch whose request did not parse.
class FailedWatch final : public grpc::ServerWriteReactor<v1::CallReply> {
 public:
  explicit FailedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// The methods' indices in the generated service: their order in turbine.proto.
enum MethodIndex : int {
  kCall = 0,
  kCallStream = 1,
  kSetInputs = 2,
  kWatch = 3,
  kStats = 4,
  kListFunctions = 5,
  kFlush = 6,
  kShutdown = 7,
  kCallBatches = 8,
  kGraph = 9,
  kTrace = 10,
  kDeleteInputs = 11,
  kCollectGarbage = 12,
  kWhy = 13,
};

}  // namespace

std::string FlattenRequest(const grpc::ByteBuffer& bytes) {
  grpc::Slice slice;
  if (!bytes.DumpToSingleSlice(&slice).ok()) return "";
  return std::string(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

absl::Status ParseRequest(const grpc::ByteBuffer& bytes, google::protobuf::Message* out) {
  {
    grpc::ByteBuffer copy(bytes);  // shares the slices; the reader needs it mutable
    grpc::ProtoBufferReader reader(&copy);
    if (reader.status().ok() && out->ParseFromZeroCopyStream(&reader)) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(WhyNotParsed(FlattenRequest(bytes), out->GetDescriptor()));
}

absl::Status ParseRequest(std::string_view bytes, google::protobuf::Message* out) {
  if (out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return absl::OkStatus();
  return absl::InvalidArgumentError(WhyNotParsed(bytes, out->GetDescriptor()));
}

uint64_t UnparsedCallId(const grpc::ByteBuffer& bytes) {
  return UnparsedCallId(FlattenRequest(bytes));
}

uint64_t UnparsedCallId(std::string_view data) {
  // The outermost fields only, skipping each whole: whatever made the request invalid is
  // inside one of them, and the id may come after it.
  uint64_t id = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    uint64_t tag = 0, value = 0;
    if (!ReadVarint(data, &pos, &tag)) break;
    if ((tag & 7) == 0) {
      if (!ReadVarint(data, &pos, &value)) break;
      if ((tag >> 3) == v1::CallRequest::kIdFieldNumber) id = value;
      continue;
    }
    if ((tag & 7) == 1) {
      value = 8;
    } else if ((tag & 7) == 5) {
      value = 4;
    } else if ((tag & 7) != 2 || !ReadVarint(data, &pos, &value)) {
      break;
    }
    if (value > data.size() - pos) break;
    pos += value;
  }
  return id;
}

absl::Status SplitCallBatch(std::string_view batch, std::vector<std::string_view>* calls) {
  const auto malformed = [] {
    return absl::InvalidArgumentError(
        "the request is not a valid turbine.v1.CallBatch (malformed protobuf)");
  };
  size_t pos = 0;
  while (pos < batch.size()) {
    uint64_t tag = 0, length = 0;
    if (!ReadVarint(batch, &pos, &tag)) return malformed();
    switch (tag & 7) {
      case 0:
        if (!ReadVarint(batch, &pos, &length)) return malformed();
        continue;
      case 1:
        length = 8;
        break;
      case 5:
        length = 4;
        break;
      case 2:
        if (!ReadVarint(batch, &pos, &length)) return malformed();
        break;
      default:
        return malformed();
    }
    if (length > batch.size() - pos) return malformed();
    // Any other field is one a newer client knows: skipped, as protobuf would.
    if ((tag >> 3) == v1::CallBatch::kCallsFieldNumber && (tag & 7) == 2) {
      if (calls->size() == kMaxCallsPerBatch) {
        return absl::InvalidArgumentError("a CallBatch carries at most " +
                                          std::to_string(kMaxCallsPerBatch) + " calls");
      }
      calls->push_back(batch.substr(pos, length));
    }
    pos += length;
  }
  return absl::OkStatus();
}

// gRPC's callback method handlers, the classes its generated code registers methods with
// (they live in gRPC's internal namespace); here they take raw request bytes.
namespace grpc_handlers = grpc::internal;

template <class Request, class Reply>
void TurbineService::ParseUnaryRequests(int index, Rpc rpc, UnaryHandler<Request, Reply> handler) {
  MarkMethodRawCallback(
      index, new grpc_handlers::CallbackUnaryHandler<grpc::ByteBuffer, Reply>(
                 [this, rpc, handler](grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* bytes, Reply* reply) {
                   // Before parsing: a client without the token learns nothing from how
                   // its request is refused, and costs no parse.
                   if (!Authorized(context)) {
                     CountRpc(rpc);
                     return Reject(context, kUnauthenticated);
                   }
                   Request request;
                   if (absl::Status parsed = ParseRequest(*bytes, &request); !parsed.ok()) {
                     CountRpc(rpc);
                     return Reject(context, ToGrpc(parsed));
                   }
                   return (this->*handler)(context, &request, reply);
                 }));
}

void TurbineService::ParseRequestsOurselves() {
  ParseUnaryRequests<v1::CallRequest, v1::CallReply>(kCall, Rpc::kCall, &TurbineService::Call);
  ParseUnaryRequests<v1::SetInputsRequest, v1::SetInputsReply>(kSetInputs, Rpc::kSetInputs,
                                                               &TurbineService::SetInputs);
  // The empty requests parse from any well-formed protobuf, but not from garbage.
  ParseUnaryRequests<v1::StatsRequest, v1::StatsReply>(kStats, Rpc::kStats, &TurbineService::Stats);
  ParseUnaryRequests<v1::ListFunctionsRequest, v1::ListFunctionsReply>(
      kListFunctions, Rpc::kListFunctions, &TurbineService::ListFunctions);
  ParseUnaryRequests<v1::FlushRequest, v1::FlushReply>(kFlush, Rpc::kFlush, &TurbineService::Flush);
  ParseUnaryRequests<v1::ShutdownRequest, v1::ShutdownReply>(kShutdown, Rpc::kShutdown,
                                                             &TurbineService::Shutdown);
  ParseUnaryRequests<v1::GraphRequest, v1::GraphReply>(kGraph, Rpc::kGraph,
                                                       &TurbineService::Graph);
  ParseUnaryRequests<v1::TraceRequest, v1::TraceReply>(kTrace, Rpc::kTrace,
                                                       &TurbineService::Trace);
  ParseUnaryRequests<v1::DeleteInputsRequest, v1::DeleteInputsReply>(
      kDeleteInputs, Rpc::kDeleteInputs, &TurbineService::DeleteInputs);
  ParseUnaryRequests<v1::CollectGarbageRequest, v1::CollectGarbageReply>(
      kCollectGarbage, Rpc::kCollectGarbage, &TurbineService::CollectGarbage);
  ParseUnaryRequests<v1::WhyRequest, v1::WhyReply>(kWhy, Rpc::kWhy, &TurbineService::Why);
  MarkMethodRawCallback(
      kWatch,
      new grpc_handlers::CallbackServerStreamingHandler<grpc::ByteBuffer, v1::CallReply>(
          [this](grpc::CallbackServerContext* context,
                 const grpc::ByteBuffer* bytes) -> grpc::ServerWriteReactor<v1::CallReply>* {
            v1::CallRequest request;
            if (!Authorized(context)) {
              CountRpc(Rpc::kWatch);
              CountError(grpc::StatusCode::UNAUTHENTICATED);
              return new FailedWatch(kUnauthenticated);
            }
            if (absl::Status parsed = ParseRequest(*bytes, &request); !parsed.ok()) {
              CountRpc(Rpc::kWatch);
              CountError(static_cast<int>(parsed.code()));
              return new FailedWatch(ToGrpc(parsed));
            }
            return Watch(context, &request);  // copies what it keeps of the request
          }));
  MarkMethodRawCallback(
      kCallStream,
      new grpc_handlers::CallbackBidiHandler<grpc::ByteBuffer, v1::CallReply>(
          [this](grpc::CallbackServerContext* context) { return OpenCallStream(context); }));
  MarkMethodRawCallback(
      kCallBatches,
      new grpc_handlers::CallbackBidiHandler<grpc::ByteBuffer, v1::ReplyBatch>(
          [this](grpc::CallbackServerContext* context) { return OpenCallBatches(context); }));
}

}  // namespace turbine::server
