// key_slot.h — Redis Cluster's key → hash slot mapping.
//
// A key's slot is CRC16 (XMODEM: polynomial 0x1021, initial value 0, no reflection) of the
// key modulo 16384, except that a key holding a non-empty `{...}` section (the first `{`
// and the first `}` after it) hashes only what is between them: a hash tag, which keeps
// related keys on one node. This is the Redis Cluster specification's algorithm, which
// every node applies; a client that computed it differently would be redirected forever.
#pragma once

#include <cstdint>
#include <string_view>

namespace turbine::shared {

inline constexpr uint16_t kSlotCount = 16384;

// Crc16 is CRC16-XMODEM of `bytes` (Crc16("123456789") == 0x31C3).
uint16_t Crc16(std::string_view bytes);

// KeySlot is the hash slot of `key`, in [0, kSlotCount).
uint16_t KeySlot(std::string_view key);

}  // namespace turbine::shared
