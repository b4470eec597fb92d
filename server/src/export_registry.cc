// export_registry.cc — the process-wide table of exported functions (export.h).
#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>

#include "turbine/server/export.h"

namespace turbine::server {
namespace {

struct Registry {
  std::shared_mutex mu;  // std, not absl: TSan sees it (Debian's Abseil is uninstrumented)
  std::vector<const ExportedFunction*> functions ABSL_GUARDED_BY(mu);
  // Every call looks its function up here: by name, then the few versions.
  absl::flat_hash_map<std::string, std::vector<const ExportedFunction*>> by_name
      ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static Registry* const registry = new Registry;  // outlives every static Export
  return *registry;
}

// Hooks are registered at static initialization, before any request: read without a lock.
std::vector<void (*)()>& CatchUpHooks() {
  static auto* const hooks = new std::vector<void (*)()>;
  return *hooks;
}

}  // namespace

CatchUpHook::CatchUpHook(void (*catch_up)()) { CatchUpHooks().push_back(catch_up); }

void CatchUpWithOutsideChanges() {
  for (void (*catch_up)() : CatchUpHooks()) catch_up();
}

namespace {
std::vector<void (*)(const std::string&)>& OwnDirectoryHooks() {
  static auto* const hooks = new std::vector<void (*)(const std::string&)>;
  return *hooks;
}
}  // namespace

OwnDirectoryHook::OwnDirectoryHook(void (*own)(const std::string& dir)) {
  OwnDirectoryHooks().push_back(own);
}

void TellOwnDirectory(const std::string& dir) {
  for (void (*own)(const std::string&) : OwnDirectoryHooks()) own(dir);
}

namespace export_detail {

void Register(ExportedFunction* exported) {
  Registry& registry = TheRegistry();
  std::lock_guard lock(registry.mu);
  for (const ExportedFunction* other : registry.functions) {
    if (other->fn.name() == exported->fn.name() && other->fn.version() == exported->fn.version()) {
      std::fprintf(stderr, "turbine: %s version %u is exported twice\n",
                   exported->fn.name().c_str(), exported->fn.version());
      std::abort();
    }
  }
  registry.functions.push_back(exported);
  registry.by_name[exported->fn.name()].push_back(exported);
}

std::vector<std::string> NamesOrDefault(std::initializer_list<std::string_view> names, size_t arity,
                                        const std::string& function) {
  if (names.size() != 0 && names.size() != arity) {
    std::fprintf(stderr, "turbine: Export of %s names %zu parameters, the function has %zu\n",
                 function.c_str(), names.size(), arity);
    std::abort();
  }
  std::vector<std::string> result;
  for (std::string_view name : names) result.emplace_back(name);
  for (size_t i = result.size(); i < arity; ++i) result.push_back("arg" + std::to_string(i));
  return result;
}

}  // namespace export_detail

const ExportedFunction* FindExported(std::string_view name, uint32_t version) {
  Registry& registry = TheRegistry();
  std::shared_lock lock(registry.mu);
  auto it = registry.by_name.find(absl::string_view(name.data(), name.size()));
  if (it == registry.by_name.end()) return nullptr;
  const ExportedFunction* best = nullptr;
  for (const ExportedFunction* exported : it->second) {
    if (version != 0 && exported->fn.version() != version) continue;
    if (best == nullptr || exported->fn.version() > best->fn.version()) best = exported;
  }
  return best;
}

std::vector<const ExportedFunction*> AllExported() {
  Registry& registry = TheRegistry();
  std::vector<const ExportedFunction*> all;
  {
    std::lock_guard lock(registry.mu);
    all = registry.functions;
  }
  std::sort(all.begin(), all.end(), [](const ExportedFunction* a, const ExportedFunction* b) {
    return std::make_pair(a->fn.name(), a->fn.version()) <
           std::make_pair(b->fn.name(), b->fn.version());
  });
  return all;
}

}  // namespace turbine::server
