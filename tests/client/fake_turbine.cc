#include "fake_turbine.h"

#include <stdlib.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "turbine/client/values.h"

namespace turbine::testing {

using client::Int;
using client::List;

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "turbine-client-XXXXXX");
  path_ = mkdtemp(pattern.data());
}

TempDir::~TempDir() { std::filesystem::remove_all(path_); }

class FakeTurbine::Service final : public v1::Turbine::Service {
 public:
  explicit Service(std::string token) : token_(std::move(token)) {}

  grpc::Status Call(grpc::ServerContext* context, const v1::CallRequest* request,
                    v1::CallReply* reply) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    if (request->function() == "slow") {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      *reply->mutable_value() = client::Null();
      return grpc::Status::OK;
    }
    if (request->function() != "echo" && request->function() != "this" &&
        request->function() != "fail") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "unknown function " + request->function());
    }
    Answer(*request, reply);
    return grpc::Status::OK;
  }

  grpc::Status CallBatches(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ReplyBatch, v1::CallBatch>* stream) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    {
      std::unique_lock lock(mu_);
      reads_released_.wait(lock, [this] { return !holding_reads_; });
    }
    std::vector<v1::CallReply> pair;
    v1::CallBatch batch;
    while (stream->Read(&batch)) {
      {
        std::lock_guard lock(mu_);
        ++batches_read_;
      }
      for (const v1::CallRequest& request : batch.calls()) {
        Answer(request, &pair.emplace_back());
        if (pair.size() == 2) {
          v1::ReplyBatch replies;
          *replies.add_replies() = pair[1];
          *replies.add_replies() = pair[0];
          stream->Write(replies);
          pair.clear();
        }
      }
    }
    if (!pair.empty()) {
      v1::ReplyBatch replies;
      *replies.add_replies() = pair[0];
      stream->Write(replies);
    }
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* context, const v1::CallRequest* request,
                     grpc::ServerWriter<v1::CallReply>* writer) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    const int count = request->function() == "finite" ? 2 : 3;
    for (int i = 1; i <= count; ++i) {
      v1::CallReply reply;
      *reply.mutable_value() = Int(i);
      if (!writer->Write(reply)) return grpc::Status::CANCELLED;
    }
    if (request->function() == "finite") return grpc::Status::OK;
    while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return grpc::Status::CANCELLED;
  }

  grpc::Status SetInputs(grpc::ServerContext* context, const v1::SetInputsRequest* request,
                         v1::SetInputsReply* reply) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    if (request->inputs_size() > 0 && request->inputs(0).key() == "unwritable") {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "the inputs were not set: the store cannot write");
    }
    std::lock_guard lock(mu_);
    last_inputs_.assign(request->inputs().begin(), request->inputs().end());
    reply->set_changed(request->inputs_size());
    return grpc::Status::OK;
  }

  grpc::Status Stats(grpc::ServerContext* context, const v1::StatsRequest*,
                     v1::StatsReply* reply) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    reply->set_tasks(3);
    reply->set_hits_memory(11);
    v1::FunctionStats* fib = reply->add_functions();
    fib->set_name("demo.fib");
    fib->set_version(1);
    fib->set_calls(2);
    return grpc::Status::OK;
  }

  grpc::Status ListFunctions(grpc::ServerContext* context, const v1::ListFunctionsRequest*,
                             v1::ListFunctionsReply* reply) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    v1::FunctionInfo* fib = reply->add_functions();
    fib->set_name("demo.fib");
    fib->set_version(1);
    fib->set_description("Fibonacci number");
    v1::Parameter* n = fib->add_params();
    n->set_name("n");
    n->set_type("i64");
    fib->set_result_type("i64");
    return grpc::Status::OK;
  }

  grpc::Status Flush(grpc::ServerContext* context, const v1::FlushRequest*,
                     v1::FlushReply* reply) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    reply->set_tasks_written(4);
    return grpc::Status::OK;
  }

  grpc::Status Shutdown(grpc::ServerContext* context, const v1::ShutdownRequest*,
                        v1::ShutdownReply*) override {
    if (grpc::Status s = CheckToken(context); !s.ok()) return s;
    std::lock_guard lock(mu_);
    shutdown_requested_ = true;
    return grpc::Status::OK;
  }

  std::vector<v1::InputEntry> last_inputs() const {
    std::lock_guard lock(mu_);
    return last_inputs_;
  }

  bool shutdown_requested() const {
    std::lock_guard lock(mu_);
    return shutdown_requested_;
  }

  void HoldStreamReads(bool hold) {
    {
      std::lock_guard lock(mu_);
      holding_reads_ = hold;
    }
    reads_released_.notify_all();
  }

  int batches_read() const {
    std::lock_guard lock(mu_);
    return batches_read_;
  }

 private:
  grpc::Status CheckToken(grpc::ServerContext* context) const {
    if (token_.empty()) return grpc::Status::OK;
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end() ||
        std::string(it->second.data(), it->second.size()) != "Bearer " + token_) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong token");
    }
    return grpc::Status::OK;
  }

  static void Answer(const v1::CallRequest& request, v1::CallReply* reply) {
    reply->set_id(request.id());
    reply->mutable_ref()->set_task(7);
    reply->set_source(v1::SOURCE_MEMORY);
    reply->set_micros(5);
    if (request.function() == "fail") {
      reply->mutable_error()->set_code(static_cast<int>(grpc::StatusCode::UNKNOWN));
      reply->mutable_error()->set_message("boom");
    } else if (request.function() == "this") {
      *reply->mutable_value() = client::Ref(request.this_ref());
    } else {
      *reply->mutable_value()->mutable_list_value()->mutable_items() = request.args();
    }
  }

  const std::string token_;
  mutable std::mutex mu_;  // guards the members below
  std::condition_variable reads_released_;
  std::vector<v1::InputEntry> last_inputs_;
  bool shutdown_requested_ = false;
  bool holding_reads_ = false;
  int batches_read_ = 0;
};

FakeTurbine::FakeTurbine(const std::string& dir, std::string token)
    : address_("unix:" + dir + "/turbined.sock"),
      service_(std::make_unique<Service>(std::move(token))) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address_, grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
}

FakeTurbine::~FakeTurbine() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void FakeTurbine::SetServing(bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

std::vector<v1::InputEntry> FakeTurbine::last_inputs() const { return service_->last_inputs(); }

bool FakeTurbine::shutdown_requested() const { return service_->shutdown_requested(); }

void FakeTurbine::HoldStreamReads(bool hold) { service_->HoldStreamReads(hold); }

int FakeTurbine::batches_read() const { return service_->batches_read(); }

}  // namespace turbine::testing
