// server_fixture.h — an in-process Server on a unix socket in a temp dir, and a raw stub.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "../storage/temp_dir.h"
#include "turbine/server/server.h"
#include "requests.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::testing {

struct LiveServer {
  explicit LiveServer(const std::string& data_dir, server::ServerOptions options = {}) {
    options.data_dir = data_dir;
    options.workers = 2;
    auto started = server::Server::Start(options);
    if (!started.ok()) {
      status = started.status();
      return;
    }
    server = std::move(*started);
    channel = grpc::CreateChannel(server->addresses().front(), grpc::InsecureChannelCredentials());
    stub = v1::Turbine::NewStub(channel);
  }

  // Call makes a unary call, with `token` as the bearer token when not empty.
  grpc::Status Call(const v1::CallRequest& request, v1::CallReply* reply,
                    const std::string& token = "") {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub->Call(&context, request, reply);
  }

  absl::Status status;
  std::unique_ptr<server::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Turbine::Stub> stub;
};

}  // namespace turbine::testing
