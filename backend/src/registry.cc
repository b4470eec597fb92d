// registry.cc — process-wide registries: value types, functions, trait implementations.
//
// All three are filled during static initialization and read while engines run; each is a
// function-local static (so registration order across translation units does not matter)
// behind its own mutex.
#include <absl/container/flat_hash_map.h>

#include <cstdio>
#include <cstdlib>
#include <deque>

#include "engine_impl.h"
#include "mutex.h"
#include "turbine/function.h"
#include "vc_positions.h"

namespace turbine {
namespace {

struct ValueTypeRegistry {
  internal::Mutex mu;
  std::deque<ValueType> types ABSL_GUARDED_BY(mu);  // deque: records never move
  absl::flat_hash_map<std::string, std::pair<const ValueType*, const void*>> by_name
      ABSL_GUARDED_BY(mu);
  // id -> record, readable without the lock (ids index a fixed array).
  std::atomic<const ValueType*> by_id[1 << 16] = {};
};

ValueTypeRegistry& Types() {
  static auto* registry = new ValueTypeRegistry;
  return *registry;
}

struct FunctionRegistry {
  internal::Mutex mu;
  std::vector<internal::FunctionInfo*> functions ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::pair<std::string, uint32_t>, internal::FunctionInfo*> by_identity
      ABSL_GUARDED_BY(mu);
  std::vector<std::string> trait_slots ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::pair<uint32_t, ValueTypeId>, const internal::FunctionInfo*> impls
      ABSL_GUARDED_BY(mu);
};

FunctionRegistry& Functions() {
  static auto* registry = new FunctionRegistry;
  return *registry;
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "turbine: %s\n", message.c_str());
  std::abort();
}

}  // namespace

const ValueType* FindValueType(std::string_view name) {
  ValueTypeRegistry& registry = Types();
  internal::MutexLock lock(&registry.mu);
  auto it = registry.by_name.find(std::string(name));
  return it == registry.by_name.end() ? nullptr : it->second.first;
}

const ValueType* ValueTypeById(ValueTypeId id) {
  if (id >= (1u << 16)) return nullptr;
  return Types().by_id[id].load(std::memory_order_acquire);
}

uint64_t StableTypeHash(ValueTypeId type) {
  const ValueType* record = ValueTypeById(type);
  return record != nullptr ? record->name_hash : 0;
}

namespace internal {
VcPositions*& ThreadVcPositions() {
  thread_local VcPositions* positions = nullptr;
  return positions;
}
}  // namespace internal

std::string ValueTypeNameOrEmpty(ValueTypeId id) {
  // RawVc's save calls this before writing the task id (vc_positions.h).
  if (internal::VcPositions* vcs = internal::ThreadVcPositions(); vcs != nullptr) [[unlikely]] {
    vcs->positions->push_back(vcs->bytes->size());
  }
  const ValueType* type = ValueTypeById(id);
  return type != nullptr ? type->name : std::string();
}

ValueTypeId ValueTypeIdByNameOrThrow(const std::string& name) {
  if (name.empty()) return kOutputSlot;
  const ValueType* type = FindValueType(name);
  if (type == nullptr) throw std::runtime_error("unknown value type '" + name + "'");
  return type->id;
}

namespace internal {

const ValueType* RegisterValueType(ValueType type, const void* cxx_type_tag) {
  ValueTypeRegistry& registry = Types();
  internal::MutexLock lock(&registry.mu);
  auto it = registry.by_name.find(type.name);
  if (it != registry.by_name.end()) {
    if (it->second.second == cxx_type_tag) return it->second.first;
    Die("two C++ types are registered as value type '" + type.name + "'");
  }
  type.id = static_cast<ValueTypeId>(registry.types.size() + 1);  // 0 is the output slot
  type.name_hash = HashValue(type.name, 0);
  if (type.id >= (1u << 16)) Die("too many value types");
  const ValueType* stored = &registry.types.emplace_back(std::move(type));
  registry.by_name.emplace(stored->name, std::make_pair(stored, cxx_type_tag));
  registry.by_id[stored->id].store(stored, std::memory_order_release);
  return stored;
}

void RegisterFunction(FunctionInfo* info) {
  FunctionRegistry& registry = Functions();
  internal::MutexLock lock(&registry.mu);
  auto identity = std::make_pair(info->name, info->version);
  if (registry.by_identity.contains(identity)) {
    Die("function '" + info->name + "' version " + std::to_string(info->version) +
        " is registered twice");
  }
  if (registry.functions.size() >= EngineImpl::kMaxFunctions) Die("too many functions");
  info->id = static_cast<uint32_t>(registry.functions.size());
  info->identity_hash = HashValue(info->version, HashValue(info->name, 0));
  registry.functions.push_back(info);
  registry.by_identity.emplace(identity, info);
}

std::vector<const FunctionInfo*> AllFunctions() {
  FunctionRegistry& registry = Functions();
  internal::MutexLock lock(&registry.mu);
  return {registry.functions.begin(), registry.functions.end()};
}

const FunctionInfo* FindFunction(const std::string& name) {
  FunctionRegistry& registry = Functions();
  internal::MutexLock lock(&registry.mu);
  const FunctionInfo* best = nullptr;
  for (const FunctionInfo* fn : registry.functions) {
    if (fn->name == name && (best == nullptr || fn->version > best->version)) best = fn;
  }
  return best;
}

const FunctionInfo* FindFunctionVersion(const std::string& name, uint32_t version) {
  FunctionRegistry& registry = Functions();
  MutexLock lock(&registry.mu);
  auto it = registry.by_identity.find(std::make_pair(name, version));
  return it == registry.by_identity.end() ? nullptr : it->second;
}

uint32_t NewTraitSlot(const std::string& trait_method_name) {
  FunctionRegistry& registry = Functions();
  internal::MutexLock lock(&registry.mu);
  registry.trait_slots.push_back(trait_method_name);
  return static_cast<uint32_t>(registry.trait_slots.size() - 1);
}

void RegisterTraitImpl(uint32_t slot, ValueTypeId self_type, const FunctionInfo* implementation) {
  FunctionRegistry& registry = Functions();
  internal::MutexLock lock(&registry.mu);
  if (!registry.impls.emplace(std::make_pair(slot, self_type), implementation).second) {
    Die("trait method '" + registry.trait_slots[slot] +
        "' has two implementations for one value type");
  }
}

const FunctionInfo* DispatchTrait(uint32_t slot, ValueTypeId self_type) {
  FunctionRegistry& registry = Functions();
  internal::MutexLock lock(&registry.mu);
  auto it = registry.impls.find(std::make_pair(slot, self_type));
  return it == registry.impls.end() ? nullptr : it->second;
}

}  // namespace internal
}  // namespace turbine

namespace turbine {

FunctionHandle internal::HandleOf(const internal::FunctionInfo& info) {
  return FunctionHandle(&info);
}

FunctionHandle FunctionHandle::Find(std::string_view name, uint32_t version) {
  const std::string key(name);
  const internal::FunctionInfo* info =
      version == 0 ? internal::FindFunction(key) : internal::FindFunctionVersion(key, version);
  return FunctionHandle(info);
}

std::vector<FunctionHandle> FunctionHandle::All() {
  std::vector<FunctionHandle> all;
  for (const internal::FunctionInfo* info : internal::AllFunctions()) {
    all.push_back(FunctionHandle(info));
  }
  return all;
}

const std::string& FunctionHandle::name() const { return info_->name; }
uint32_t FunctionHandle::version() const { return info_->version; }
const std::string& FunctionHandle::description() const { return info_->description; }
const std::vector<std::string>& FunctionHandle::param_types() const { return info_->param_types; }
const std::string& FunctionHandle::result_type() const { return info_->result_type; }
bool FunctionHandle::has_receiver() const { return info_->has_receiver; }
bool FunctionHandle::is_trait_method() const {
  return info_->kind == internal::FunctionKind::kTraitDispatch;
}
bool FunctionHandle::session_dependent() const { return info_->session_dependent; }

}  // namespace turbine
