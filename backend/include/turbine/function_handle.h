// function_handle.h — naming a registered task function from outside task bodies.
//
//   turbine::FunctionHandle fib = turbine::FunctionHandle::Find("demo.fib");
//   std::tuple<int64_t> args{30};
//   turbine::CallSource source;
//   absl::StatusOr<turbine::RawVc> vc = engine.Call(fib, turbine::RawVc{}, args, &source);
//
// A handle is what a server keeps for each function it serves: the registered identity
// (name, version), what the function takes and returns, and how the engine treats it,
// without its C++ type. Engine::Call (engine.h) calls through one on an explicit engine.
// Handles are small values, valid for the life of the process (functions are registered at
// static initialization and never unregistered). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turbine {

class FunctionHandle;
namespace internal {
struct FunctionInfo;
FunctionHandle HandleOf(const FunctionInfo& info);
}  // namespace internal

// CallSource says where a call found its task.
enum class CallSource : uint8_t {
  kMemory,   // already in the engine
  kDisk,     // restored from the backing store by this call
  kCreated,  // new: it will execute
};

class FunctionHandle {
 public:
  FunctionHandle() = default;  // names no function

  // Find finds a registered function by name: `version` 0 means the highest registered.
  // The handle names no function if there is none.
  static FunctionHandle Find(std::string_view name, uint32_t version = 0);
  // All lists every registered function, in registration order.
  static std::vector<FunctionHandle> All();

  bool valid() const { return info_ != nullptr; }
  // REQUIRES: valid() for all accessors below.
  const std::string& name() const;
  uint32_t version() const;
  const std::string& description() const;
  // Stable type names of the parameters after the receiver, in order.
  const std::vector<std::string>& param_types() const;
  // Stable type name of the result (a trait's name for a trait method).
  const std::string& result_type() const;
  // A method or trait method: calls take a receiver (`this`).
  bool has_receiver() const;
  // A trait method: the receiver's cell type picks the implementation.
  bool is_trait_method() const;
  // The result depends on the world outside the engine (FunctionOptions).
  bool session_dependent() const;

  bool operator==(const FunctionHandle&) const = default;

 private:
  friend FunctionHandle internal::HandleOf(const internal::FunctionInfo& info);
  friend class Engine;
  explicit FunctionHandle(const internal::FunctionInfo* info) : info_(info) {}

  const internal::FunctionInfo* info_ = nullptr;
};

}  // namespace turbine
