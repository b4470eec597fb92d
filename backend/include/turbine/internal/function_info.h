// internal/function_info.h — the type-erased record of one registered task function.
//
// Function<F>, Method<F> and TraitMethod fill one of these at static-initialization time.
// The engine reaches arguments only through these pointers, which is what lets a lookup
// hash and compare arguments that still live on the caller's stack.
#pragma once

#include <coroutine>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "turbine/raw_vc.h"
#include "turbine/task.h"

namespace turbine::internal {

struct ExecContext;
struct FunctionInfo;

// ErasedTask is a started-but-suspended task body plus the code that turns its result into
// the task's output.
struct ErasedTask {
  std::coroutine_handle<PromiseBase> handle;
  // Called after the body finished without throwing; stores the result as the output.
  void (*store_result)(PromiseBase& promise, ExecContext& context) = nullptr;
  // Destroys the coroutine frame (the typed handle knows the promise type).
  void (*destroy)(std::coroutine_handle<PromiseBase> handle) = nullptr;
};

enum class FunctionKind : uint8_t {
  kPlain,          // a function or method the user wrote
  kResolveFirst,   // resolves ResolvedVc arguments, then calls `target`
  kTraitDispatch,  // resolves `this`, then calls the implementation for its value type
  kInput,          // an input slot: never executed, set from outside
};

struct FunctionInfo {
  std::string name;
  uint32_t version = 1;
  std::string description;
  std::vector<std::string> param_types;  // stable type names, in order
  std::string result_type;
  bool has_receiver = false;
  // The result depends on the world outside the engine (see FunctionOptions).
  bool session_dependent = false;
  // Garbage once no stored task refers to it or read it (see FunctionOptions).
  bool kept_while_referenced = false;
  // Never shared across machines (see FunctionOptions).
  bool machine_local = false;
  FunctionKind kind = FunctionKind::kPlain;
  uint32_t id = 0;  // process-local index, assigned at registration
  // XXH3 of (name, version), assigned at registration: the seed of every task hash, so a
  // task's hash is the same in every process (the backing store relies on it).
  uint64_t identity_hash = 0;

  // Names the C++ type of the argument tuple (ArgsTypeTag), so a call through a type-erased
  // FunctionHandle can check it was given the right tuple.
  const void* args_type = nullptr;
  // Argument tuple operations. `args` is always a pointer to the function's argument tuple.
  uint64_t (*hash_args)(const void* args, uint64_t seed) = nullptr;
  bool (*equal_args)(const void* a, const void* b) = nullptr;
  // The tuple's size and alignment: a task keeps its tuple right after its record, in the
  // same allocation (the only one of a task's identity, made on a true miss).
  size_t args_size = 0;
  size_t args_align = 1;
  // Moves a tuple (on the caller's stack, or a decoded one) into `place`, raw memory of
  // args_size bytes; destroy_args_at ends the tuple there.
  void (*move_args_to)(void* args, void* place) = nullptr;
  void (*destroy_args_at)(void* place) = nullptr;
  // Deletes a heap tuple, as deserialize_args makes.
  void (*destroy_args)(void* heap_args) = nullptr;
  // Canonical bytes of an argument tuple (cereal binary): what the backing store keeps and
  // compares. Appends to `out`, so a caller can reuse one buffer.
  void (*serialize_args)(const void* args, std::string* out) = nullptr;
  // Rebuilds a heap tuple from canonical bytes; null if they are malformed.
  void* (*deserialize_args)(std::string_view bytes) = nullptr;
  // Appends the arguments in short, comma-separated (short_text.h): for graphs and traces.
  void (*describe_args)(const void* args, std::string* out) = nullptr;
  // True if some ResolvedVc argument still points at a task output.
  bool (*needs_resolution)(const void* args) = nullptr;
  // Starts the body (suspended at its first instruction).
  ErasedTask (*invoke)(const FunctionInfo& self, RawVc receiver, const void* args) = nullptr;

  // kResolveFirst: the function to call once arguments are resolved. Plain functions with
  // ResolvedVc parameters point here at their resolve-first twin.
  const FunctionInfo* target = nullptr;
  const FunctionInfo* resolver = nullptr;
  // kTraitDispatch: the trait method's dispatch table id.
  uint32_t trait_slot = 0;
};

// ArgsTypeTag<Tuple>() is a distinct address for each argument tuple type.
template <class Tuple>
inline constexpr char kArgsTypeTag = 0;
template <class Tuple>
const void* ArgsTypeTag() {
  return &kArgsTypeTag<Tuple>;
}

// RegisterFunction makes `info` callable by name. (name, version) must be unique; a clash
// aborts with a message (two registrations of one identity would corrupt the cache).
void RegisterFunction(FunctionInfo* info);

// AllFunctions lists every registered function, in registration order.
std::vector<const FunctionInfo*> AllFunctions();

// FindFunction finds a registered function by name (the highest version), or null.
const FunctionInfo* FindFunction(const std::string& name);
// FindFunctionVersion finds exactly (name, version), or null.
const FunctionInfo* FindFunctionVersion(const std::string& name, uint32_t version);

// RegisterTraitImpl records that `implementation` serves trait slot `slot` for values of
// type `self_type`. DispatchTrait finds it again (null if the type does not implement it).
uint32_t NewTraitSlot(const std::string& trait_method_name);
void RegisterTraitImpl(uint32_t slot, ValueTypeId self_type, const FunctionInfo* implementation);
const FunctionInfo* DispatchTrait(uint32_t slot, ValueTypeId self_type);

}  // namespace turbine::internal
