// text.h — text that ends up in messages and on the wire.
//
// Protobuf `string` fields and gRPC status messages must be UTF-8, but file names and
// contents, input keys and function names are bytes. These helpers decide how such bytes
// appear in a message: escaped where they are not UTF-8, and cut short when they are long,
// so that echoing a hostile request never makes a reply (or a cached error) huge.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace turbine {

// IsValidUtf8 tells whether `text` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing above U+10FFFF): what protobuf accepts in a `string` field.
bool IsValidUtf8(std::string_view text);

// EscapeInvalidUtf8 returns `text` with each byte that is not part of a well-formed UTF-8
// sequence written as `\xHH` (lowercase hex); valid text comes back unchanged.
std::string EscapeInvalidUtf8(std::string_view text);

// kEchoLimit is how many bytes of a piece of user input an error message repeats.
inline constexpr size_t kEchoLimit = 1024;

// Echo is user input as an error message repeats it: escaped like EscapeInvalidUtf8, and
// beyond kEchoLimit bytes cut at a character boundary and followed by
// "...(N bytes)", N the input's full length. Every message that repeats a request's
// function name, key, path or value goes through it.
std::string Echo(std::string_view user_text);

}  // namespace turbine
