// persist.cc — cereal encodings of task identities and results (layout in persist.h).
#include "persist.h"

#include <absl/strings/numbers.h>

#include <algorithm>

#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>
#include <cstring>
#include <ostream>
#include <tuple>
#include <vector>

#include "input_summary.h"
#include "turbine/internal/serialization.h"
#include "turbine/vc.h"

namespace turbine::internal {
namespace {

using IdentityRecord = std::tuple<std::string, uint32_t, RawVc, std::string>;
using CellRecord = std::tuple<std::string, uint32_t, std::string, uint64_t>;
using DepRecord = std::tuple<RawVc, uint64_t>;
// kind, value type (for an error: its status code in decimal, empty for UNKNOWN), value
// bytes (or error text), ref, output stamp, cells, deps, then the Validity: clean as of,
// functions digest, flags (kNeedsVerification), inputs summary. Older records end before
// the summary (it decodes as kAnyInput), or after the deps (an unknown Validity).
using ResultRecord =
    std::tuple<uint8_t, std::string, std::string, RawVc, uint64_t, std::vector<CellRecord>,
               std::vector<DepRecord>, uint64_t, uint32_t, uint8_t, uint64_t>;
using ResultRecordWithoutInputs =
    std::tuple<uint8_t, std::string, std::string, RawVc, uint64_t, std::vector<CellRecord>,
               std::vector<DepRecord>, uint64_t, uint32_t, uint8_t>;
using ResultRecordWithoutValidity = std::tuple<uint8_t, std::string, std::string, RawVc,
                                               uint64_t, std::vector<CellRecord>,
                                               std::vector<DepRecord>>;
constexpr uint8_t kNeedsVerification = 1;

}  // namespace

void EncodeIdentity(const FunctionInfo& fn, RawVc receiver, const void* args, std::string* out) {
  // The bytes of an IdentityRecord, written in place: the argument bytes go straight into
  // `out` (a lookup's reused buffer) and their length prefix is filled in afterwards, so
  // no temporary string holds them.
  {
    // Scoped: the thread's stream is returned before serialize_args borrows it.
    OutputStream stream(out);  // unbuffered: `out` is current after every write
    cereal::BinaryOutputArchive archive(stream.stream());
    archive(fn.name, fn.version, receiver);
  }
  static_assert(sizeof(cereal::size_type) == sizeof(uint64_t));
  const size_t length_at = out->size();
  out->append(sizeof(uint64_t), '\0');
  const size_t args_at = out->size();
  fn.serialize_args(args, out);
  const uint64_t length = out->size() - args_at;
  std::memcpy(out->data() + length_at, &length, sizeof(length));  // cereal: native order
}

bool DecodeIdentity(std::string_view bytes, DecodedIdentity* identity) {
  IdentityRecord record;
  // False also for a RawVc naming a value type this build does not have.
  if (!DeserializeFrom(bytes, &record)) return false;
  const FunctionInfo* fn = FindFunctionVersion(std::get<0>(record), std::get<1>(record));
  if (fn == nullptr || fn->deserialize_args == nullptr) return false;
  void* args = fn->deserialize_args(std::get<3>(record));
  if (args == nullptr) return false;
  identity->fn = fn;
  identity->receiver = std::get<2>(record);
  identity->args = args;
  return true;
}

bool PeekFunction(std::string_view bytes, std::string* name, uint32_t* version) {
  InputStream stream(bytes);
  try {
    BoundedInputArchive archive(stream.buffer());
    archive(*name, *version);  // the head of an IdentityRecord
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

void EncodeResult(const TaskState& task, std::string* out, std::vector<TaskId>* refs,
                  const Validity& validity) {
  const Output& output = task.output;
  std::string value_bytes;
  std::string type_name;
  // Values are serialized outside the record, so that only Vcs inside them reach `refs`,
  // not the slots of `deps`.
  VcSink sink(refs);
  if (output.kind() == OutputKind::kValue) {
    type_name = output.type()->name;
    output.type()->serialize(output.data(), &value_bytes);
  } else if (output.kind() == OutputKind::kError) {
    const TaskFailure& failure = output.error();
    if (failure.code != absl::StatusCode::kUnknown) {
      type_name = std::to_string(static_cast<int>(failure.code));
    }
    value_bytes = failure.message;
  } else if (output.kind() == OutputKind::kRef) {
    NoteVc(output.ref());
  }
  std::vector<CellRecord> cells;
  cells.reserve(task.cells().size());
  for (const CellSlot& cell : task.cells()) {
    const ValueType* type = ValueTypeById(cell.type);
    std::string bytes;
    type->serialize(cell.value.get(), &bytes);
    cells.emplace_back(type->name, cell.index, std::move(bytes), cell.changed_at);
  }
  sink.Stop();
  std::vector<DepRecord> deps;
  deps.reserve(task.deps().size());
  for (const Dep& dep : task.deps()) deps.emplace_back(dep.slot, dep.observed);
  SerializeTo(ResultRecord{static_cast<uint8_t>(output.kind()), std::move(type_name),
                           std::move(value_bytes), output.ref(), task.output_changed_at,
                           std::move(cells), std::move(deps), validity.clean_as_of,
                           validity.functions,
                           validity.needs_verification ? kNeedsVerification : uint8_t{0},
                           validity.inputs},
              out);
}

bool DecodeResultRecord(std::string_view bytes, DecodedResult* result, std::vector<TaskId>* refs) {
  ResultRecord record;
  if (!DeserializeFrom(bytes, &record)) {
    ResultRecordWithoutInputs without_inputs;
    if (DeserializeFrom(bytes, &without_inputs)) {
      record = std::tuple_cat(std::move(without_inputs), std::make_tuple(kAnyInput));
    } else {
      ResultRecordWithoutValidity older;
      if (!DeserializeFrom(bytes, &older)) return false;
      record = std::tuple_cat(std::move(older), std::make_tuple(uint64_t{0}, uint32_t{0},
                                                                kNeedsVerification, kAnyInput));
    }
  }
  auto& [kind, type_name, value_bytes, ref, stamp, cell_records, dep_records, clean_as_of,
         functions, flags, inputs] = record;
  result->validity.inputs = inputs;
  result->validity.clean_as_of = clean_as_of;
  result->validity.functions = functions;
  result->validity.needs_verification = (flags & kNeedsVerification) != 0;
  VcSink sink(refs);  // around the values only, as in EncodeResult
  Output& output = result->output;
  switch (static_cast<OutputKind>(kind)) {
    case OutputKind::kValue: {
      const ValueType* type = FindValueType(type_name);
      if (type == nullptr) return false;
      std::shared_ptr<const void> value = type->deserialize(value_bytes);
      if (value == nullptr) return false;
      output.SetValue(type, std::move(value));
      break;
    }
    case OutputKind::kError: {
      int code = static_cast<int>(absl::StatusCode::kUnknown);
      if (!type_name.empty() && (!absl::SimpleAtoi(type_name, &code) || code <= 0 || code > 16)) {
        return false;
      }
      output = Output::Error(static_cast<absl::StatusCode>(code), std::move(value_bytes));
      break;
    }
    case OutputKind::kRef:
      output.SetRef(ref);
      NoteVc(ref);
      break;
    case OutputKind::kNone:
    default:  // a damaged kind byte
      return false;
  }
  for (auto& [cell_type, index, cell_bytes, cell_stamp] : cell_records) {
    const ValueType* type = FindValueType(cell_type);
    if (type == nullptr) return false;
    std::shared_ptr<const void> value = type->deserialize(cell_bytes);
    if (value == nullptr) return false;
    result->cells.push_back(CellSlot{type->id, index, cell_stamp, std::move(value)});
  }
  for (const auto& [slot, observed] : dep_records) result->deps.push_back(Dep{slot, observed});
  result->stamp = stamp;
  return true;
}

bool DecodeResult(std::string_view bytes, TaskState* task, Validity* validity) {
  DecodedResult result;
  if (!DecodeResultRecord(bytes, &result, nullptr)) return false;
  if (validity != nullptr) *validity = result.validity;
  task->output = std::move(result.output);
  task->output_changed_at = result.stamp;
  task->deps_and_cells = DepsAndCells(result.deps, result.cells);
  return true;
}

uint32_t FunctionsDigest() {
  std::vector<std::string> names;
  for (const FunctionInfo* fn : AllFunctions()) {
    names.push_back(fn->name + '@' + std::to_string(fn->version));
  }
  std::sort(names.begin(), names.end());
  uint32_t digest = 2166136261u;  // FNV-1a: stable across processes, unlike absl::Hash
  for (const std::string& name : names) {
    for (char c : name + '\n') digest = (digest ^ static_cast<uint8_t>(c)) * 16777619u;
  }
  return digest;
}

bool ReadRecordLinks(std::string_view identity, std::string_view result, RecordLinks* links) {
  {
    VcSink sink(&links->refs);  // the receiver and Vcs among the arguments
    DecodedIdentity decoded;
    if (!DecodeIdentity(identity, &decoded)) return false;
    links->fn = decoded.fn;
    if (decoded.fn->kind == FunctionKind::kInput) {
      links->input_key = std::get<0>(*static_cast<const std::tuple<std::string>*>(decoded.args));
    }
  }
  if (result.empty()) return true;
  DecodedResult decoded;
  if (!DecodeResultRecord(result, &decoded, &links->refs)) return false;
  for (const Dep& dep : decoded.deps) links->deps.push_back(dep.slot.task);
  return true;
}

}  // namespace turbine::internal
