// internal/serialization.h — the canonical bytes of values: cereal over plain strings.
//
// Internal: included by value_type.h because the encoding of every value type is a
// template instantiated where the type is used. Programs use EncodeValue / DecodeValue
// (value_type.h), never this header.
//
// The backing store compares a lookup's arguments with stored canonical bytes by
// serializing into a reused buffer; std::ostringstream would allocate and copy every time.
// AppendStreambuf appends to a caller's std::string; ViewStreambuf reads a string_view.
//
// Constructing a std::ostream or std::istream (locale, ios_base state) costs more than
// encoding a small argument tuple, and every lookup on disk and every task in a snapshot
// encodes one. So each thread keeps one stream of each kind and points it at the bytes of
// the moment (OutputStream, InputStream). An encoding nested in another (a value whose
// serialization calls SerializeTo) finds the thread's stream lent and makes its own.
// Thread-safety: the streams are per thread; lending one is not reentrant, hence the flag.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>

namespace turbine::internal {

class AppendStreambuf : public std::streambuf {
 public:
  explicit AppendStreambuf(std::string* out = nullptr) : out_(out) {}
  void reset(std::string* out) { out_ = out; }

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out_->push_back(static_cast<char>(c));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* data, std::streamsize size) override {
    out_->append(data, static_cast<size_t>(size));
    return size;
  }

 private:
  std::string* out_;
};

class ViewStreambuf : public std::streambuf {
 public:
  explicit ViewStreambuf(std::string_view bytes = {}) { reset(bytes); }
  void reset(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());  // read-only: no put area is set
    setg(begin, begin, begin + bytes.size());
  }
  bool at_end() { return gptr() == egptr(); }
  uint64_t remaining() { return static_cast<uint64_t>(egptr() - gptr()); }
};

// StreamSlot is a stream over its buffer, and whether it is lent out right now.
template <class Buffer, class Stream>
struct StreamSlot {
  Buffer buffer;
  Stream stream{&buffer};
  bool lent = false;
};

// LentStream lends this thread's StreamSlot, or a new one while that is lent, pointed at
// `target`, for the lifetime of the LentStream.
template <class Buffer, class Stream, class Target>
class LentStream {
 public:
  explicit LentStream(Target target) {
    thread_local Slot reused;
    Slot* slot = &reused;
    if (reused.lent) slot = &own_.emplace();
    slot->lent = true;
    slot->buffer.reset(target);
    slot->stream.clear();
    slot_ = slot;
  }
  ~LentStream() { slot_->lent = false; }
  LentStream(const LentStream&) = delete;
  LentStream& operator=(const LentStream&) = delete;

  Stream& stream() { return slot_->stream; }
  Buffer& buffer() { return slot_->buffer; }

 private:
  using Slot = StreamSlot<Buffer, Stream>;
  Slot* slot_;
  std::optional<Slot> own_;
};

using OutputStream = LentStream<AppendStreambuf, std::ostream, std::string*>;
using InputStream = LentStream<ViewStreambuf, std::istream, std::string_view>;

// SerializeTo appends the cereal binary encoding of `value` to `out`.
template <class T>
void SerializeTo(const T& value, std::string* out) {
  OutputStream stream(out);
  cereal::BinaryOutputArchive archive(stream.stream());
  archive(value);
}

// BoundedInputArchive reads cereal's binary format (what BinaryOutputArchive writes) from a
// ViewStreambuf, and refuses any length prefix larger than the bytes left. Stored records
// come from disk, where a flipped bit in a length would otherwise make cereal allocate and
// zero that many bytes (gigabytes) before noticing the input is short. The bound holds
// because every element of every container the engine stores takes at least one byte.
class BoundedInputArchive
    : public cereal::InputArchive<BoundedInputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit BoundedInputArchive(ViewStreambuf& buffer)
      : InputArchive<BoundedInputArchive, cereal::AllowEmptyClassElision>(this), buffer_(buffer) {}

  void LoadBytes(void* data, std::streamsize size) {
    if (buffer_.sgetn(static_cast<char*>(data), size) != size) {
      throw cereal::Exception("truncated input");
    }
  }
  void CheckLength(uint64_t length) {
    if (length > buffer_.remaining()) throw cereal::Exception("length exceeds the input");
  }

 private:
  ViewStreambuf& buffer_;
};

template <class T>
  requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, T& t) {
  ar.LoadBytes(std::addressof(t), sizeof(t));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, cereal::BinaryData<T>& data) {
  ar.LoadBytes(data.data, static_cast<std::streamsize>(data.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, cereal::SizeTag<T>& tag) {
  uint64_t size = 0;
  ar.LoadBytes(&size, sizeof(size));
  ar.CheckLength(size);
  tag.size = static_cast<std::remove_reference_t<T>>(size);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(BoundedInputArchive& ar, cereal::NameValuePair<T>& pair) {
  ar(pair.value);
}

// DeserializeFrom decodes exactly `bytes` into `value`; false if they are malformed,
// truncated, or longer than one encoding.
template <class T>
bool DeserializeFrom(std::string_view bytes, T* value) {
  InputStream stream(bytes);
  try {
    BoundedInputArchive archive(stream.buffer());
    archive(*value);
  } catch (const std::exception&) {
    return false;  // a truncated or malformed input is reported by throwing
  }
  return stream.buffer().at_end();
}

}  // namespace turbine::internal

// Values with separate save and load functions are found through the output archive of the
// same format.
namespace cereal::traits::detail {
template <>
struct get_output_from_input<turbine::internal::BoundedInputArchive> {
  using type = cereal::BinaryOutputArchive;
};
}  // namespace cereal::traits::detail
