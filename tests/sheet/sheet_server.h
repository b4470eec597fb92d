// sheet_server.h — a spreadsheet behind the real protocol: an in-process Server on a unix
// socket and a RocksDB data dir (tests/server/server_fixture.h), with calls shaped for
// cells: set inputs, evaluate a cell, count executions, restart on the same data.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "../server/server_fixture.h"

namespace turbine::testing {

inline v1::Value Bool(bool value) {
  v1::Value out;
  out.set_bool_value(value);
  return out;
}

// CellResult is one sheet.eval reply: a value, or an error with its gRPC code.
struct CellResult {
  bool ok = false;
  int64_t value = 0;
  std::string error;
  int code = 0;
  v1::Source source = v1::SOURCE_UNSPECIFIED;

  bool operator==(const CellResult& other) const {
    return ok == other.ok && (ok ? value == other.value : error == other.error);
  }
  static CellResult Value(int64_t value) {
    CellResult result;
    result.ok = true;
    result.value = value;
    return result;
  }
  static CellResult Error(std::string error) {
    CellResult result;
    result.error = std::move(error);
    return result;
  }
};

inline std::ostream& operator<<(std::ostream& out, const CellResult& result) {
  if (result.ok) return out << result.value;
  return out << "error \"" << result.error << "\"";
}

class SheetServer {
 public:
  explicit SheetServer(std::string data_dir) : data_dir_(std::move(data_dir)) { Start(); }

  bool ok() const { return live_ != nullptr && live_->status.ok(); }
  absl::Status status() const { return live_->status; }

  // Restart closes the server (flushing the engine to disk) and opens a new one on the
  // same data dir.
  void Restart() {
    live_.reset();
    Start();
  }

  // Set sets inputs in one atomic batch; false if the RPC failed.
  bool Set(const std::vector<std::pair<std::string, v1::Value>>& inputs) {
    v1::SetInputsRequest request;
    for (const auto& [key, value] : inputs) {
      v1::InputEntry* entry = request.add_inputs();
      entry->set_key(key);
      *entry->mutable_value() = value;
    }
    v1::SetInputsReply reply;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = live_->stub->SetInputs(&context, request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return status.ok();
  }
  bool Set(const std::string& cell, int64_t value) { return Set({{cell, Int(value)}}); }
  bool Set(const std::string& cell, const std::string& formula) {
    return Set({{cell, Str(formula)}});
  }
  bool Set(const std::string& cell, const v1::Value& value) { return Set({{cell, value}}); }

  // Call calls `function` with one string argument; the RPC itself must succeed.
  v1::CallReply Call(const std::string& function, const std::string& arg) {
    v1::CallReply reply;
    grpc::Status status = live_->Call(Request(function, {Str(arg)}), &reply);
    EXPECT_TRUE(status.ok()) << function << "(" << arg << "): " << status.error_message();
    return reply;
  }

  CellResult Eval(const std::string& cell) { return FromReply(Call("sheet.eval", cell)); }

  // EvalAll evaluates `cells` with every call in flight at once on one CallStream, so the
  // server works on several of them in parallel. Results in the order of `cells`.
  std::vector<CellResult> EvalAll(const std::vector<std::string>& cells) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stream = live_->stub->CallStream(&context);
    for (size_t i = 0; i < cells.size(); ++i) {
      v1::CallRequest request = Request("sheet.eval", {Str(cells[i])});
      request.set_id(i + 1);
      EXPECT_TRUE(stream->Write(request));
    }
    stream->WritesDone();
    std::vector<CellResult> results(cells.size());
    v1::CallReply reply;
    size_t replies = 0;
    while (stream->Read(&reply)) {
      ++replies;
      if (reply.id() >= 1 && reply.id() <= cells.size()) results[reply.id() - 1] = FromReply(reply);
    }
    const grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(replies, cells.size());
    return results;
  }

  static CellResult FromReply(const v1::CallReply& reply) {
    CellResult result;
    result.source = reply.source();
    if (reply.has_error()) {
      result.error = reply.error().message();
      result.code = reply.error().code();
    } else {
      EXPECT_EQ(reply.value().kind_case(), v1::Value::kIntValue);
      result.ok = true;
      result.value = reply.value().int_value();
    }
    return result;
  }

  std::vector<std::string> Refs(const std::string& cell) {
    const v1::CallReply reply = Call("sheet.refs", cell);
    std::vector<std::string> names;
    for (const v1::Value& item : reply.value().list_value().items()) {
      names.push_back(item.string_value());
    }
    return names;
  }

  // Why explains why `cell`'s task holds its value (the Why RPC), one step per line.
  std::string Why(const std::string& cell) {
    v1::WhyRequest request;
    *request.mutable_call() = Request("sheet.eval", {Str(cell)});
    v1::WhyReply reply;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const grpc::Status status = live_->stub->Why(&context, request, &reply);
    if (!status.ok()) return "Why failed: " + status.error_message();
    std::string text;
    for (const v1::WhyStep& step : reply.steps()) {
      text += std::string(2 * step.depth(), ' ') + step.text() + "\n";
    }
    return text;
  }

  // Executions counts the executions of `function` since this server started (Stats RPC).
  uint64_t Executions(const std::string& function = "sheet.eval") {
    v1::StatsReply stats;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    EXPECT_TRUE(live_->stub->Stats(&context, v1::StatsRequest(), &stats).ok());
    for (const v1::FunctionStats& fn : stats.functions()) {
      if (fn.name() == function) return fn.executions();
    }
    return 0;
  }

  LiveServer& live() { return *live_; }

 private:
  void Start() { live_ = std::make_unique<LiveServer>(data_dir_); }

  std::string data_dir_;
  std::unique_ptr<LiveServer> live_;
};

}  // namespace turbine::testing
