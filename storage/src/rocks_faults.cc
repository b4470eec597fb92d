// rocks_faults.cc — RocksDB's info log, forwarded to the process's log.
#include "rocks_faults.h"

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace turbine::storage {
namespace {

class ProcessLogger : public rocksdb::Logger {
 public:
  ProcessLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::DEBUG_LEVEL) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const spdlog::level::level_enum ours = Ours(level);
    if (!spdlog::should_log(ours)) return;  // most of it: nothing formatted
    char buffer[1024];
    va_list copy;
    va_copy(copy, ap);
    const int size = std::vsnprintf(buffer, sizeof(buffer), format, copy);
    va_end(copy);
    if (size < 0) return;
    std::string message;
    if (static_cast<size_t>(size) < sizeof(buffer)) {
      message.assign(buffer, static_cast<size_t>(size));
    } else {
      message.resize(static_cast<size_t>(size) + 1);
      std::vsnprintf(message.data(), message.size(), format, ap);
      message.resize(static_cast<size_t>(size));
    }
    spdlog::log(ours, "rocksdb: {}", message);
  }

 private:
  static spdlog::level::level_enum Ours(rocksdb::InfoLogLevel level) {
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      case rocksdb::InfoLogLevel::HEADER_LEVEL:
        return spdlog::level::trace;
      // Its errors too: it logs expected ones (a new database's missing directory, each
      // failed write on a full disk), and the store logs what an operator must know.
      case rocksdb::InfoLogLevel::INFO_LEVEL:
      case rocksdb::InfoLogLevel::WARN_LEVEL:
      case rocksdb::InfoLogLevel::ERROR_LEVEL:
        return spdlog::level::debug;
      default:
        return spdlog::level::err;
    }
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewProcessLogger() { return std::make_shared<ProcessLogger>(); }

}  // namespace turbine::storage
