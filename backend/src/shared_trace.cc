// shared_trace.cc — trace records, digests, adoption and publishing (shared_trace.h).
#include "shared_trace.h"

#include <absl/container/flat_hash_set.h>
#include <absl/functional/function_ref.h>

#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>
#include <algorithm>
#include <cstring>
#include <tuple>

#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"
#include "turbine/internal/serialization.h"
#include "turbine/internal/xxh3.h"
#include "vc_positions.h"

namespace turbine::internal {
namespace {

constexpr char kMagic[4] = {'T', 'B', 'T', 'R'};

using CellTuple = std::tuple<std::string, uint32_t, std::string>;
using DepTuple = std::tuple<std::string, std::string, uint32_t, std::string>;
using RecordTuple = std::tuple<std::string, bool, std::string, uint32_t, std::string,
                               std::vector<CellTuple>, std::vector<DepTuple>>;

std::string Digest128(std::string_view bytes) {
  const XXH128_hash_t hash = XXH3_128bits(bytes.data(), bytes.size());
  std::string out(16, '\0');
  std::memcpy(out.data(), &hash.high64, 8);
  std::memcpy(out.data() + 8, &hash.low64, 8);
  return out;
}

// SharedIdentityAt is SharedIdentity for a task named `depth` references below the first.
bool SharedIdentityAt(EngineImpl& engine, const TaskState& task, bool may_load, int depth,
                      std::string* out);
// CallByName finds or creates, here, the task a stable identity names, and gives its output.
bool CallByName(EngineImpl& engine, std::string_view name, int depth, RawVc* output);

using StableTuple = std::tuple<std::string, std::vector<uint64_t>, std::vector<std::string>>;

void PutId(std::string* bytes, size_t at, uint64_t id) { std::memcpy(bytes->data() + at, &id, 8); }
uint64_t GetId(std::string_view bytes, size_t at) {
  uint64_t id = 0;
  std::memcpy(&id, bytes.data() + at, 8);
  return id;
}

// EncodeStable runs `write`, which appends canonical bytes holding Vcs, and gives their
// stable encoding (shared_trace.h). `reread` decodes such bytes, reporting the Vcs it
// loads through a VcSink: the placeholders must come back as 1..n, in order, or some Vc
// was not where RecordVcPositions saw it (an encoding nested in a buffer of its own).
// False if a referenced task cannot be named.
bool EncodeStable(EngineImpl& engine, bool may_load, int depth,
                  absl::FunctionRef<void(std::string*)> write,
                  absl::FunctionRef<bool(std::string_view)> reread, std::string* out) {
  std::string bytes;
  std::vector<size_t> seen_at;
  std::vector<TaskId> ids;
  {
    RecordVcPositions record(&bytes, &seen_at);
    VcSink sink(&ids);
    write(&bytes);
  }
  std::vector<uint64_t> positions;
  for (size_t at : seen_at) {
    if (at + sizeof(uint64_t) > bytes.size()) return false;
    const uint64_t id = GetId(bytes, at);
    if (id == kNoTask) continue;  // a Vc that names nothing
    if (positions.size() >= ids.size() || id != ids[positions.size()]) return false;
    positions.push_back(at);
  }
  if (positions.size() != ids.size()) return false;
  std::vector<std::string> names;
  if (!ids.empty()) {
    if (depth >= kMaxNameDepth) return false;
    for (size_t i = 0; i < positions.size(); ++i) PutId(&bytes, positions[i], i + 1);
    std::vector<TaskId> placeholders;
    {
      VcSink sink(&placeholders);
      if (!reread(bytes)) return false;
    }
    for (size_t i = 0; i < placeholders.size(); ++i) {
      if (placeholders[i] != i + 1) return false;
    }
    if (placeholders.size() != ids.size()) return false;
    size_t names_size = 0;
    for (TaskId id : ids) {
      const TaskState* target = may_load ? engine.Task(id) : engine.InMemory(id);
      std::string name;
      if (target == nullptr || !SharedIdentityAt(engine, *target, may_load, depth + 1, &name)) {
        return false;
      }
      names_size += name.size();
      if (names_size > kMaxNameBytes) return false;
      names.push_back(std::move(name));
    }
  }
  SerializeTo(StableTuple{std::move(bytes), std::move(positions), std::move(names)}, out);
  // The bound is on names of references; what a record holds at its top is bounded by the
  // tier's record size.
  return depth == 0 || out->size() <= kMaxNameBytes;
}

// ResolveStable turns a stable encoding back into canonical bytes here: each referenced
// task is found or created by its stable identity and its local id replaces the
// placeholder. `ids` are those ids, in order. False if malformed or a name does not resolve.
bool ResolveStable(EngineImpl& engine, std::string_view stable, int depth, std::string* bytes,
                   std::vector<TaskId>* ids) {
  StableTuple tuple;
  if (!DeserializeFrom(stable, &tuple)) return false;
  auto& [canonical, positions, names] = tuple;
  if (positions.size() != names.size()) return false;
  if (!names.empty() && depth >= kMaxNameDepth) return false;
  size_t next_free = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    const uint64_t at = positions[i];
    if (at < next_free || at > canonical.size() || canonical.size() - at < sizeof(uint64_t) ||
        GetId(canonical, at) != i + 1) {
      return false;
    }
    next_free = at + sizeof(uint64_t);
    RawVc found;
    if (!CallByName(engine, names[i], depth + 1, &found)) return false;
    PutId(&canonical, at, found.task);
    ids->push_back(found.task);
  }
  *bytes = std::move(canonical);
  return true;
}

// ValueBytes gives a value's stable encoding; false if a task it refers to cannot be named.
bool ValueBytes(EngineImpl& engine, bool may_load, const ValueType& type, const void* value,
                std::string* out) {
  return EncodeStable(
      engine, may_load, 0, [&](std::string* bytes) { type.serialize(value, bytes); },
      [&](std::string_view bytes) { return type.deserialize(bytes) != nullptr; }, out);
}

// DecodeValue decodes a value's stable encoding here; null if malformed or if a Vc in it is
// not one of the tasks its names resolved to.
std::shared_ptr<const void> DecodeValue(EngineImpl& engine, const ValueType& type,
                                        std::string_view stable) {
  std::string bytes;
  std::vector<TaskId> ids;
  if (!ResolveStable(engine, stable, 0, &bytes, &ids)) return nullptr;
  std::vector<TaskId> loaded;
  VcSink sink(&loaded);
  std::shared_ptr<const void> value = type.deserialize(bytes);
  sink.Stop();
  return loaded == ids ? value : nullptr;
}

void AppendDigestPart(std::string* out, std::string_view part) {
  const uint64_t size = part.size();
  out->append(reinterpret_cast<const char*>(&size), sizeof(size));
  out->append(part);
}

bool SharedIdentityAt(EngineImpl& engine, const TaskState& task, bool may_load, int depth,
                      std::string* out) {
  return EncodeStable(
      engine, may_load, depth,
      [&](std::string* bytes) { EncodeIdentity(*task.fn, task.receiver(), task.args(), bytes); },
      [](std::string_view bytes) {
        DecodedIdentity decoded;
        return DecodeIdentity(bytes, &decoded);
      },
      out);
}

bool CallByName(EngineImpl& engine, std::string_view name, int depth, RawVc* output) {
  std::string bytes;
  std::vector<TaskId> ids;
  if (!ResolveStable(engine, name, depth, &bytes, &ids)) return false;
  std::vector<TaskId> loaded;
  DecodedIdentity identity;
  {
    VcSink sink(&loaded);
    if (!DecodeIdentity(bytes, &identity)) return false;
  }
  if (loaded != ids) return false;
  *output = engine.Call(*identity.fn, identity.receiver, identity.args);
  return true;
}

}  // namespace

bool SharedIdentity(EngineImpl& engine, const TaskState& task, bool may_load, std::string* out) {
  return SharedIdentityAt(engine, task, may_load, 0, out);
}

std::string TraceKey(const std::string& name_space, std::string_view identity) {
  const XXH128_hash_t hash = XXH3_128bits(identity.data(), identity.size());
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  return "turbine:" + name_space + ":v" + std::to_string(kTraceFormatVersion) + ":" + hex;
}

std::string EncodeTraceRecord(const TraceRecord& record) {
  std::vector<CellTuple> cells;
  for (const TraceCell& cell : record.cells)
    cells.emplace_back(cell.type_name, cell.index, cell.bytes);
  std::vector<DepTuple> deps;
  for (const TraceDep& dep : record.deps) {
    deps.emplace_back(dep.identity, dep.slot_type, dep.slot_index, dep.digest);
  }
  std::string out(kMagic, sizeof(kMagic));
  const uint32_t version = kTraceFormatVersion;
  out.append(reinterpret_cast<const char*>(&version), sizeof(version));
  SerializeTo(
      RecordTuple{record.identity, record.output_is_ref, record.output_type,
                  record.output_ref_index, record.output_bytes, std::move(cells), std::move(deps)},
      &out);
  const uint64_t checksum = XXH3_64bits(out.data(), out.size());
  out.append(reinterpret_cast<const char*>(&checksum), sizeof(checksum));
  return out;
}

bool DecodeTraceRecord(std::string_view bytes, TraceRecord* record) {
  constexpr size_t kHeader = sizeof(kMagic) + sizeof(uint32_t);
  if (bytes.size() < kHeader + sizeof(uint64_t)) return false;
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return false;
  uint32_t version = 0;
  std::memcpy(&version, bytes.data() + sizeof(kMagic), sizeof(version));
  if (version != kTraceFormatVersion) return false;
  const std::string_view body = bytes.substr(0, bytes.size() - sizeof(uint64_t));
  uint64_t checksum = 0;
  std::memcpy(&checksum, bytes.data() + body.size(), sizeof(checksum));
  if (XXH3_64bits(body.data(), body.size()) != checksum) return false;
  RecordTuple tuple;
  if (!DeserializeFrom(body.substr(kHeader), &tuple)) return false;
  auto& [identity, is_ref, type, ref_index, output, cells, deps] = tuple;
  record->identity = std::move(identity);
  record->output_is_ref = is_ref;
  record->output_type = std::move(type);
  record->output_ref_index = ref_index;
  record->output_bytes = std::move(output);
  for (auto& [cell_type, index, cell_bytes] : cells) {
    record->cells.push_back(TraceCell{std::move(cell_type), index, std::move(cell_bytes)});
  }
  for (auto& [dep_identity, slot_type, slot_index, digest] : deps) {
    if (digest.size() != 16) return false;
    record->deps.push_back(
        TraceDep{std::move(dep_identity), std::move(slot_type), slot_index, std::move(digest)});
  }
  return true;
}

bool SlotDigest(EngineImpl& engine, const TaskState& task, RawVc slot, std::string* digest) {
  // Under a task lock the store may not be read: references are named from memory only
  // (a task not in memory means "no digest", which is safe: the trace is not adopted).
  constexpr bool kMayLoad = false;
  std::string buffer;
  if (slot.is_output()) {
    const Output& output = task.output;
    switch (output.kind()) {
      case OutputKind::kValue: {
        std::string bytes;
        if (!ValueBytes(engine, kMayLoad, *output.type(), output.data(), &bytes)) return false;
        AppendDigestPart(&buffer, "value");
        AppendDigestPart(&buffer, output.type()->name);
        AppendDigestPart(&buffer, bytes);
        break;
      }
      case OutputKind::kError:
        AppendDigestPart(&buffer, "error");
        AppendDigestPart(&buffer, std::to_string(static_cast<int>(output.error().code)));
        AppendDigestPart(&buffer, output.error().message);
        break;
      case OutputKind::kRef: {
        // A reference is named the way a trace names a dependency: by the stable identity
        // of the task it points into (its own, or another's) and the slot. What it leads
        // to is a dependency of its own, with its own digest.
        // A machine-local task (a file's content under its inode and times) by its
        // function alone: the digest of its own slot, the next dependency, is its value.
        std::string target_identity;
        if (output.ref().task == task.id) {
          target_identity = "self";
        } else {
          const TaskState* target = engine.InMemory(output.ref().task);
          if (target == nullptr) return false;
          if (target->fn->machine_local) {
            target_identity = "machine-local " + target->fn->name + "@" +
                              std::to_string(target->fn->version);
          } else if (!SharedIdentity(engine, *target, kMayLoad, &target_identity)) {
            return false;
          }
        }
        AppendDigestPart(&buffer, "ref");
        AppendDigestPart(&buffer, target_identity);
        AppendDigestPart(&buffer, output.ref().is_cell() ? ValueTypeById(output.ref().type)->name : "");
        AppendDigestPart(&buffer, std::to_string(output.ref().index));
        break;
      }
      case OutputKind::kNone:
      default:
        return false;
    }
  } else {
    const CellSlot* cell = task.FindCell(slot.type, slot.index);
    if (cell == nullptr) return false;
    const ValueType& type = *ValueTypeById(cell->type);
    std::string bytes;
    if (!ValueBytes(engine, kMayLoad, type, cell->value.get(), &bytes)) return false;
    AppendDigestPart(&buffer, "cell");
    AppendDigestPart(&buffer, type.name);
    AppendDigestPart(&buffer, bytes);
  }
  *digest = Digest128(buffer);
  return true;
}

bool BuildTrace(EngineImpl& engine, TaskState& task, TraceRecord* record) {
  // What the task holds is copied under its lock (values are immutable, shared) and
  // encoded after: naming a reference may read the store, which no task lock may cover.
  Output output;
  std::vector<CellSlot> cells;
  std::vector<Dep> deps;
  {
    MutexLock lock(&task.mu);
    if (task.phase != Phase::kClean || task.from_shared) return false;
    output = task.output;
    cells.assign(task.cells().begin(), task.cells().end());
    deps.assign(task.deps().begin(), task.deps().end());
  }
  constexpr bool kMayLoad = true;
  if (!SharedIdentity(engine, task, kMayLoad, &record->identity)) return false;
  if (output.kind() == OutputKind::kValue) {
    record->output_type = output.type()->name;
    if (!ValueBytes(engine, kMayLoad, *output.type(), output.data(), &record->output_bytes)) {
      return false;
    }
  } else if (output.kind() == OutputKind::kRef) {
    record->output_is_ref = true;
    record->output_type = output.ref().is_cell() ? ValueTypeById(output.ref().type)->name : "";
    record->output_ref_index = output.ref().index;
    if (output.ref().task != task.id) {
      const TaskState* target = engine.Task(output.ref().task);
      if (target == nullptr || !SharedIdentity(engine, *target, kMayLoad, &record->output_bytes)) {
        return false;
      }
    } else if (!output.ref().is_cell()) {
      return false;  // its own output: a cycle, never a result
    }
  } else {
    return false;  // errors stay local: they may be this machine's (a missing file)
  }
  for (const CellSlot& cell : cells) {
    const ValueType& type = *ValueTypeById(cell.type);
    TraceCell traced{type.name, cell.index, {}};
    if (!ValueBytes(engine, kMayLoad, type, cell.value.get(), &traced.bytes)) return false;
    record->cells.push_back(std::move(traced));
  }
  RawVc previous_ref;  // where the previous dependency's output led, if it is a reference
  for (const Dep& dep : deps) {
    TaskState* target = engine.Task(dep.slot.task);
    if (target == nullptr) return false;
    TraceDep traced;
    if (target->fn->machine_local) {
      // Named by the reference that led to it (TraceDep); read any other way, it could
      // not be found on another machine.
      if (previous_ref.task != dep.slot.task) return false;
    } else if (!SharedIdentity(engine, *target, kMayLoad, &traced.identity)) {
      return false;
    }
    MutexLock lock(&target->mu);
    // The value it saw must still be there: otherwise the digest would describe another.
    if (target->phase != Phase::kClean || target->SlotChangedAt(dep.slot) != dep.observed) {
      return false;
    }
    if (dep.slot.is_cell()) {
      traced.slot_type = ValueTypeById(dep.slot.type)->name;
      traced.slot_index = dep.slot.index;
    }
    if (!SlotDigest(engine, *target, dep.slot, &traced.digest)) return false;
    previous_ref = dep.slot.is_output() && target->output.kind() == OutputKind::kRef
                       ? target->output.ref()
                       : RawVc();
    record->deps.push_back(std::move(traced));
  }
  return true;
}

bool AdoptTrace(EngineImpl& engine, const TraceRecord& record, ExecContext* context) {
  TaskState& task = *context->task;
  for (const TraceCell& traced : record.cells) {
    const ValueType* type = FindValueType(traced.type_name);
    if (type == nullptr) return false;
    std::shared_ptr<const void> value = DecodeValue(engine, *type, traced.bytes);
    if (value == nullptr) return false;
    context->cells.push_back(CellSlot{type->id, traced.index, 0, std::move(value)});
  }
  if (record.output_is_ref && !record.output_bytes.empty()) {
    // A slot of another task, named by its stable identity: that task here.
    RawVc target;
    if (!CallByName(engine, record.output_bytes, 0, &target)) return false;
    if (record.output_type.empty()) {
      context->output.SetRef(target);
      return true;
    }
    const ValueType* type = FindValueType(record.output_type);
    if (type == nullptr) return false;
    context->output.SetRef(RawVc::Cell(target.task, type->id, record.output_ref_index));
    return true;
  }
  const ValueType* type = FindValueType(record.output_type);
  if (type == nullptr) return false;
  if (record.output_is_ref) {
    bool found = false;
    for (const CellSlot& cell : context->cells) {
      found = found || (cell.type == type->id && cell.index == record.output_ref_index);
    }
    if (!found) return false;  // a reference to a cell the record does not carry
    context->output.SetRef(RawVc::Cell(task.id, type->id, record.output_ref_index));
    return true;
  }
  std::shared_ptr<const void> value = DecodeValue(engine, *type, record.output_bytes);
  if (value == nullptr) return false;
  context->output.SetValue(type, std::move(value));
  return true;
}

bool ResolveTraceDep(EngineImpl& engine, const TraceDep& dep, RawVc previous, RawVc* slot) {
  RawVc output;
  if (dep.identity.empty()) {
    TaskState* before = previous.is_output() ? engine.Task(previous.task) : nullptr;
    if (before == nullptr) return false;
    MutexLock lock(&before->mu);
    if (!StampsCurrent(before->phase) || before->output.kind() != OutputKind::kRef) return false;
    output = RawVc::Output(before->output.ref().task);
  } else if (!CallByName(engine, dep.identity, 0, &output)) {
    return false;
  }
  if (dep.slot_type.empty()) {
    *slot = output;
    return true;
  }
  const ValueType* type = FindValueType(dep.slot_type);
  if (type == nullptr) return false;
  *slot = RawVc::Cell(output.task, type->id, dep.slot_index);
  return true;
}

// --- the engine's side: fetching and publishing ---

namespace {

// SharedKind tells whether tasks of `fn` go through the tier. Trait dispatch and
// resolve-first tasks too: they read (resolve) and answer with a reference to another task,
// which a trace names by its stable identity.
bool SharedKind(const FunctionInfo& fn) {
  return fn.kind != FunctionKind::kInput && !fn.session_dependent && !fn.machine_local;
}

}  // namespace

bool EngineImpl::Shares(const TaskState& task) const { return sharing() && SharedKind(*task.fn); }

std::optional<std::string> EngineImpl::TakePrefetched(const std::string& key) {
  std::lock_guard<std::mutex> lock(prefetched_mu_);
  auto ahead = prefetched_.find(key);
  if (ahead == prefetched_.end()) return std::nullopt;
  prefetched_bytes_ -= ahead->second.size();
  std::optional<std::string> bytes = std::move(ahead->second);
  prefetched_.erase(ahead);
  return bytes;
}

bool EngineImpl::FetchTrace(TaskState& task, TraceRecord* record) {
  std::string identity;
  // No lock: a task's identity is immutable, and naming its references may read the store.
  if (!SharedIdentity(*this, task, /*may_load=*/true, &identity)) return false;
  counts.shared_lookups.fetch_add(1, std::memory_order_relaxed);
  const std::string key = TraceKey(shared_.name_space, identity);
  absl::StatusOr<std::optional<std::string>> found = TakePrefetched(key);
  const bool asked_tier = !found->has_value();
  if (asked_tier) found = shared_.tier->Lookup(key);
  if (!found.ok() && absl::IsCancelled(found.status())) {
    // The tier was stopped (SharedTier::Stop: the daemon stops): a miss, not an outage.
    counts.shared_misses.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (!found.ok()) {
    counts.shared_errors.fetch_add(1, std::memory_order_relaxed);
    if (shared_lookups_outage_.Failed(found.status())) {
      Log(LogLevel::kWarning, "shared cache unavailable, answering from this machine only: " +
                                  found.status().ToString());
    }
    return false;
  }
  if (asked_tier && shared_lookups_outage_.Worked()) {
    Log(LogLevel::kInfo, "shared cache available again");
  }
  if (!found->has_value()) {
    counts.shared_misses.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::string& bytes = **found;
  if (bytes.size() > shared_.max_record_bytes || !DecodeTraceRecord(bytes, record) ||
      record->identity != identity) {
    counts.shared_ignored.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

namespace {

// MayBeShared tells whether a stable identity names a task whose trace could be in the
// tier: a function this build has, of a kind that is published.
// Called for every dependency of every trace fetched, so it peeks instead of decoding: a
// StableTuple's encoding starts with the length of its canonical bytes (u64), then those
// bytes, which start with the function's name and version (persist.h).
bool MayBeShared(std::string_view stable) {
  if (stable.size() < sizeof(uint64_t)) return false;
  std::string name;
  uint32_t version = 0;
  if (!PeekFunction(stable.substr(sizeof(uint64_t)), &name, &version)) return false;
  const FunctionInfo* fn = FindFunctionVersion(name, version);
  return fn != nullptr && SharedKind(*fn);
}

// Prefetched records wait while the dependencies before theirs are verified (which may
// execute): beyond this many bytes, no more are kept (one not kept costs its own lookup
// later, nothing else). They are asked for in groups of kPrefetchKeys, each its own
// MultiGet under the tier's timeout, so a large trace cannot make one request outlast it.
constexpr size_t kMaxPrefetchedBytes = 8 << 20;
constexpr size_t kPrefetchKeys = 64;

}  // namespace

std::vector<std::string> EngineImpl::PrefetchTraces(const TraceRecord& record) {
  std::vector<std::string> keys;
  absl::flat_hash_set<std::string_view> seen;  // two slots of one task: one key
  for (const TraceDep& dep : record.deps) {
    if (MayBeShared(dep.identity) && seen.insert(dep.identity).second) {
      keys.push_back(TraceKey(shared_.name_space, dep.identity));
    }
  }
  // One dependency costs its own lookup anyway; an error is FetchTrace's to report.
  if (keys.size() < 2) return {};
  std::vector<std::string> kept;
  for (size_t begin = 0; begin < keys.size(); begin += kPrefetchKeys) {
    const size_t end = std::min(keys.size(), begin + kPrefetchKeys);
    const std::vector<std::string> group(keys.begin() + static_cast<ptrdiff_t>(begin),
                                         keys.begin() + static_cast<ptrdiff_t>(end));
    absl::StatusOr<std::vector<std::optional<std::string>>> found =
        shared_.tier->LookupMany(group);
    if (!found.ok()) break;
    std::lock_guard<std::mutex> lock(prefetched_mu_);
    for (size_t i = 0; i < group.size(); ++i) {
      std::optional<std::string>& bytes = (*found)[i];
      if (!bytes.has_value() || bytes->size() > shared_.max_record_bytes) continue;
      if (prefetched_bytes_ + bytes->size() > kMaxPrefetchedBytes) return kept;
      auto [at, inserted] = prefetched_.try_emplace(group[i], std::move(*bytes));
      if (!inserted) continue;
      prefetched_bytes_ += at->second.size();
      kept.push_back(group[i]);
    }
  }
  return kept;
}

void EngineImpl::DropPrefetched(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) TakePrefetched(key);
}

void EngineImpl::QueueSharedPublish(TaskId id) {
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    if (publish_queue_.size() >= shared_.max_queued) {
      counts.shared_publish_dropped.fetch_add(1, std::memory_order_relaxed);
      if (!std::exchange(publish_overflowed_, true)) {
        Log(LogLevel::kWarning,
            "shared cache: " + std::to_string(shared_.max_queued) +
                " traces wait to be published; what executes before they are is not shared "
                "(counted as not published)");
      }
      return;
    }
    publish_queue_.push_back(id);
  }
  publish_wake_.notify_one();
}

void EngineImpl::PublishLoop() {
  constexpr size_t kBatch = 256;
  std::unique_lock<std::mutex> lock(publish_mu_);
  while (true) {
    publish_wake_.wait(lock, [&] { return stopping_publish_ || !publish_queue_.empty(); });
    if (stopping_publish_) return;
    if (publish_queue_.size() < shared_.max_queued / 2) publish_overflowed_ = false;
    std::vector<TaskId> ids;
    const size_t n = std::min(kBatch, publish_queue_.size());
    ids.assign(publish_queue_.begin(), publish_queue_.begin() + static_cast<ptrdiff_t>(n));
    publish_queue_.erase(publish_queue_.begin(),
                         publish_queue_.begin() + static_cast<ptrdiff_t>(n));
    publishing_ = ids.size();
    lock.unlock();
    std::vector<std::pair<std::string, std::string>> records;
    {
      Section section;  // reclaim.h
      for (TaskId id : ids) {
        TaskState* task = Task(id);
        TraceRecord record;
        if (task == nullptr || !BuildTrace(*this, *task, &record)) {
          counts.shared_publish_dropped.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        std::string bytes = EncodeTraceRecord(record);
        if (bytes.size() > shared_.max_record_bytes) {
          counts.shared_publish_dropped.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        records.emplace_back(TraceKey(shared_.name_space, record.identity), std::move(bytes));
      }
    }
    if (!records.empty()) {
      absl::Status status = shared_.tier->Publish(records);
      if (status.ok()) {
        counts.shared_published.fetch_add(records.size(), std::memory_order_relaxed);
        if (shared_publish_outage_.Worked()) Log(LogLevel::kInfo, "shared cache: publishing again");
      } else {
        // Not an error of a lookup (shared_errors counts lookups, by result): dropped.
        counts.shared_publish_dropped.fetch_add(records.size(), std::memory_order_relaxed);
        if (!absl::IsCancelled(status) && shared_publish_outage_.Failed(status)) {
          Log(LogLevel::kWarning,
              "shared cache: publishing failed, results are not shared meanwhile: " +
                  status.ToString());
        }
      }
    }
    lock.lock();
    publishing_ = 0;
  }
}

uint64_t EngineImpl::SharedPublishQueue() {
  std::lock_guard<std::mutex> lock(publish_mu_);
  return publish_queue_.size() + publishing_;
}

}  // namespace turbine::internal
