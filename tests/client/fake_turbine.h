// fake_turbine.h — a stand-in turbined for client tests: a real gRPC server on a Unix
// socket, with canned functions instead of an engine.
//
//   echo(args...)   -> the list of its arguments (ref 7, source memory, 5 µs)
//   this()          -> its receiver, as a reference value
//   fail()          -> the function error "boom"
//   slow()          -> sleeps a second, then null
//   anything else   -> NOT_FOUND "unknown function <name>"
// SetInputs whose first key is "unwritable" answers UNAVAILABLE, as a daemon whose store
// cannot write does.
// CallBatches answers each pair of calls in reverse order, to show replies are matched by
// id, not by position. Watch of "finite" sends 1 and 2 and ends; of anything else sends
// 1, 2, 3 and waits until cancelled.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::testing {

// TempDir is a fresh directory removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class FakeTurbine {
 public:
  // Serves at unix:<dir>/turbined.sock. With a token, every RPC must carry it.
  explicit FakeTurbine(const std::string& dir, std::string token = "");
  ~FakeTurbine();

  std::string address() const { return address_; }
  void SetServing(bool serving);
  // What the last SetInputs carried.
  std::vector<v1::InputEntry> last_inputs() const;
  bool shutdown_requested() const;
  // While held, a new CallBatches stream reads nothing (its client's writes back up).
  void HoldStreamReads(bool hold);
  // CallBatch messages read so far, on every stream.
  int batches_read() const;

 private:
  class Service;
  std::string address_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace turbine::testing
