// open_store.h — opening a store in a test, and looking at what it holds on disk.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "turbine/backing_store.h"
#include "turbine/internal/xxh3.h"
#include "turbine/storage/format.h"
#include "turbine/storage/store.h"

namespace turbine::testing {

// OpenStore opens the store at `dir`, or fails the test and returns null.
inline std::unique_ptr<storage::Store> OpenStore(const std::string& dir,
                                                 storage::OpenReport* report = nullptr) {
  absl::StatusOr<std::unique_ptr<storage::Store>> store =
      storage::Store::Open(storage::StoreOptions{.data_dir = dir}, report);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

// Longest is the size of the longest key of `table`, or with `values` of its longest value.
inline size_t Longest(const storage::Store& store, storage::Table table, bool values) {
  size_t longest = 0;
  EXPECT_TRUE(store
                  .ForEach(table,
                           [&](std::string_view key, std::string_view value) {
                             longest = std::max(longest, values ? value.size() : key.size());
                           })
                  .ok());
  return longest;
}

// FormatVersion is the format version the store says it is of.
inline std::string FormatVersion(const storage::Store& store) {
  std::string version;
  EXPECT_TRUE(*store.Get(storage::Table::kMeta, storage::kFormatVersionKey, &version));
  return version;
}

// ManifestBytes is the size of the MANIFEST files of the store at `dir`.
inline uint64_t ManifestBytes(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator(dir / "db")) {
    if (entry.path().filename().string().starts_with("MANIFEST-")) bytes += entry.file_size();
  }
  return bytes;
}

// LoggedHashes is the XXH3-64 of each input a log of changes names, in its order: the
// store gives a long name by that hash alone (InputChange).
inline std::vector<uint64_t> LoggedHashes(const InputChangeLog& log) {
  std::vector<uint64_t> hashes;
  for (const InputChange& change : log.changes) {
    hashes.push_back(change.key_hash.has_value()
                         ? *change.key_hash
                         : XXH3_64bits(change.key.data(), change.key.size()));
  }
  return hashes;
}

// Hashes is the XXH3-64 of each of `names`.
inline std::vector<uint64_t> Hashes(const std::vector<std::string>& names) {
  std::vector<uint64_t> hashes;
  for (const std::string& name : names) hashes.push_back(XXH3_64bits(name.data(), name.size()));
  return hashes;
}

}  // namespace turbine::testing
