// internal/byte_streams.h — cereal over plain strings, without stringstream copies.
//
// The backing store compares a lookup's arguments with stored canonical bytes by
// serializing into a reused buffer; std::ostringstream would allocate and copy every time.
// AppendStreambuf appends to a caller's std::string; ViewStreambuf reads a string_view.
#pragma once

#include <cereal/archives/binary.hpp>

#include <istream>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace turbine::internal {

class AppendStreambuf : public std::streambuf {
 public:
  explicit AppendStreambuf(std::string* out) : out_(out) {}

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
  explicit ViewStreambuf(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());  // read-only: no put area is set
    setg(begin, begin, begin + bytes.size());
  }
  bool at_end() { return gptr() == egptr(); }
};

// SerializeTo appends the cereal binary encoding of `value` to `out`.
template <class T>
void SerializeTo(const T& value, std::string* out) {
  AppendStreambuf buffer(out);
  std::ostream stream(&buffer);
  cereal::BinaryOutputArchive archive(stream);
  archive(value);
}

// DeserializeFrom decodes exactly `bytes` into `value`; false if they are malformed,
// truncated, or longer than one encoding.
template <class T>
bool DeserializeFrom(std::string_view bytes, T* value) {
  ViewStreambuf buffer(bytes);
  std::istream stream(&buffer);
  try {
    cereal::BinaryInputArchive archive(stream);
    archive(*value);
  } catch (const std::exception&) {
    return false;  // cereal reports truncated or malformed input by throwing
  }
  return buffer.at_end();
}

}  // namespace turbine::internal
