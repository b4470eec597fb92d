// record_fuzz.cc — the decoders of every stored record, on arbitrary bytes: a damaged
// record is rejected, never a crash. The first byte picks the record:
//   0  a `tasks` record: [key length][key][value], decoded by the store
//      (storage/src/records.h), then its identity and result by the engine
//      (backend/src/persist.h), as a restart reads them
//   1  an `inputs` value, decoded by the store, then restored as the engine does (and
//      taken apart as if under a long name's key)
//   2  a `meta` counter
// The standard library is linked in, so records of its real functions and types decode.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "engine_impl.h"
#include "fuzz_check.h"
#include "persist.h"
#include "records.h"

// White-box: the engine's private decoders, as a restart runs them.
namespace engine_private = turbine::internal;
namespace storage = turbine::storage;

namespace {

void FuzzTaskRecord(std::string_view bytes) {
  if (bytes.empty()) return;
  const size_t key_size = std::min<size_t>(static_cast<uint8_t>(bytes[0]), bytes.size() - 1);
  std::optional<turbine::StoredTask> stored =
      storage::DecodeTaskRecord(bytes.substr(1, key_size), bytes.substr(1 + key_size));
  if (!stored.has_value()) return;
  engine_private::DecodedIdentity identity;
  if (!engine_private::DecodeIdentity(stored->identity, &identity)) return;
  // The task moves the decoded arguments into its own, as in the engine.
  std::unique_ptr<engine_private::TaskState> owned = engine_private::TaskState::Create(
      stored->id, stored->hash, identity.fn, identity.receiver, identity.args);
  engine_private::TaskState& task = *owned;
  engine_private::MutexLock lock(&task.mu);
  if (!engine_private::DecodeResult(stored->result, &task)) return;
  FUZZ_CHECK(task.output.kind() == engine_private::OutputKind::kValue ||
             task.output.kind() == engine_private::OutputKind::kRef ||
             task.output.kind() == engine_private::OutputKind::kError);
  // A result that decodes is one the engine could have written: encoding it again and
  // decoding that gives the same bytes.
  std::string encoded;
  engine_private::EncodeResult(task, &encoded);
  std::string encoded_again;
  FUZZ_CHECK(engine_private::DecodeResult(encoded, &task));
  engine_private::EncodeResult(task, &encoded_again);
  FUZZ_CHECK(encoded == encoded_again);
}

void FuzzInputRecord(std::string_view bytes) {
  // As the value under a long name's digest key too: its length is not trusted either.
  static const std::string digest_key(storage::NameKey::kDigestedSize, 'k');
  (void)storage::NameAndValue(digest_key, bytes);
  std::optional<turbine::StoredInput> stored = storage::DecodeInputRecord(bytes);
  if (!stored.has_value()) return;
  engine_private::Output output;
  uint64_t stamp = 0;
  engine_private::InputFromStore("key", stored, &output, &stamp);
  FUZZ_CHECK(output.kind() == engine_private::OutputKind::kValue ||
             output.kind() == engine_private::OutputKind::kError);
  FUZZ_CHECK(stamp == stored->stamp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      FuzzTaskRecord(bytes);
      break;
    case 1:
      FuzzInputRecord(bytes);
      break;
    case 2:
      (void)storage::DecodeCounter(bytes);
      break;
  }
  return 0;
}
