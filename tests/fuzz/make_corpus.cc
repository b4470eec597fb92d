// make_corpus.cc — writes the seed inputs of the fuzz targets from real values and records.
//
//   build/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
//
// record_fuzz's seeds are the records a real store holds after the standard library ran:
// an engine on RocksDB in a scratch directory calls exported functions through the same
// wire conversion as the daemon, flushes, and every record of every table is written out.
// The others are protocol values, formulas and CLI arguments of the kinds users write.
// Seeds are small; rerun after a format change and commit what changed.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "turbine/engine.h"
#include "turbine/server/export.h"
#include "turbine/server/wire.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace fs = std::filesystem;
namespace v1 = turbine::v1;
using turbine::WireValue;

namespace {

void WriteSeed(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

v1::Value ToWire(const WireValue& value) {
  v1::Value wire;
  turbine::server::Wire<WireValue>::To(value, &wire);
  return wire;
}

std::vector<WireValue> SampleValues() {
  const turbine::RawVc cell = turbine::RawVc::Cell(3, turbine::ValueTypeOf<int64_t>().id, 0);
  return {
      WireValue(),
      WireValue(true),
      WireValue(int64_t{42}),
      WireValue(int64_t{-9223372036854775807 - 1}),
      WireValue(1.5),
      WireValue(-0.0),
      WireValue(std::string("/tmp/example.txt")),
      WireValue(turbine::Bytes{"\x00\xff binary"}),
      WireValue(WireValue::List{int64_t{1}, int64_t{2}, int64_t{3}}),
      WireValue(WireValue::List{std::string("a"), std::string("b")}),
      WireValue(WireValue::List{1.0, 2.5, WireValue()}),
      WireValue(WireValue::Map{
          {"x", int64_t{1}}, {"label", std::string("p")}, {"weights", WireValue::List{0.5, 2.0}}}),
      WireValue(WireValue::Map{{"a", WireValue::List{1.0}}, {"b", WireValue::List{}}}),
      WireValue(turbine::RawVc::Output(12)),
      WireValue(cell),
      WireValue(WireValue::List{WireValue(
          WireValue::List{WireValue(WireValue::Map{{"deep", WireValue::List{int64_t{7}}}})})}),
  };
}

// RecordSeeds runs the standard library on a real store and returns its records in
// record_fuzz's format: a selector byte, then the record.
std::vector<std::pair<std::string, std::string>> RecordSeeds(const fs::path& scratch) {
  fs::remove_all(scratch);
  fs::create_directories(scratch / "files" / "sub");
  std::ofstream(scratch / "files" / "a.txt") << "one\ntwo\nthree\n";
  std::ofstream(scratch / "files" / "sub" / "b.txt") << "four\n";
  {
    auto store = std::move(*turbine::storage::Store::Open({.data_dir = (scratch / "db").string()}));
    turbine::storage::RocksBackingStore backing(store.get());
    turbine::Engine engine(turbine::EngineOptions{.worker_threads = 2, .backing_store = &backing});
    turbine::Engine::Scope scope(engine);
    (void)engine.SetInput("A1", WireValue(int64_t{5}));
    (void)engine.SetInput("B1", WireValue(std::string("A1*2+sum(A1, 3)")));
    (void)engine.SetInput("C1", WireValue(std::string("B1/0")));
    (void)engine.SetInput("config",
                          WireValue(WireValue::Map{{"depth", int64_t{3}},
                                                   {"tags", WireValue::List{std::string("x")}}}));
    const std::string a = (scratch / "files" / "a.txt").string();
    const std::string dir = (scratch / "files").string();
    const std::vector<std::pair<std::string, std::vector<WireValue>>> calls = {
        {"demo.fib", {int64_t{12}}},
        {"input.get", {std::string("config")}},
        {"input.get", {std::string("missing")}},
        // An identity over 1 KiB: keyed by its digest, the identity in the value.
        {"input.get", {std::string(1500, 'k')}},
        {"text.lines", {a}},
        {"text.digest", {a}},
        {"fs.stat", {a}},
        {"fs.list", {dir}},
        {"tree.summary", {dir, WireValue::List{std::string("sub")}}},
        {"sheet.eval", {std::string("B1")}},
        {"sheet.eval", {std::string("C1")}},
        {"sheet.refs", {std::string("B1")}},
        {"fs.path", {a}},
    };
    for (const auto& [name, args] : calls) {
      const turbine::server::ExportedFunction* fn = turbine::server::FindExported(name);
      if (fn == nullptr) {
        std::fprintf(stderr, "make_corpus: no function %s\n", name.c_str());
        std::exit(1);
      }
      google::protobuf::RepeatedPtrField<v1::Value> wire;
      for (const WireValue& arg : args) *wire.Add() = ToWire(arg);
      turbine::CallSource source;
      absl::StatusOr<turbine::RawVc> vc = fn->call(*fn, engine, turbine::RawVc(), wire, &source);
      if (!vc.ok() || !engine.Resolve(*vc).ok()) {
        std::fprintf(stderr, "make_corpus: %s failed\n", name.c_str());
      }
    }
    if (!engine.Flush().ok()) std::exit(1);
  }
  auto store = std::move(*turbine::storage::Store::Open({.data_dir = (scratch / "db").string()}));
  std::vector<std::pair<std::string, std::string>> seeds;
  const auto dump = [&](turbine::storage::Table table, const std::string& prefix, auto encode) {
    int n = 0;
    const absl::Status scanned =
        store->ForEach(table, [&](std::string_view key, std::string_view value) {
          seeds.emplace_back(prefix + "-" + std::to_string(n++),
                             encode(std::string(key), std::string(value)));
        });
    if (!scanned.ok()) std::exit(1);
  };
  dump(turbine::storage::Table::kTasks, "task",
       [](const std::string& key, const std::string& value) {
         return std::string(1, '\0') + static_cast<char>(std::min<size_t>(key.size(), 255)) + key +
                value;
       });
  dump(turbine::storage::Table::kInputs, "input",
       [](const std::string&, const std::string& value) { return std::string(1, '\1') + value; });
  dump(turbine::storage::Table::kMeta, "meta",
       [](const std::string&, const std::string& value) { return std::string(1, '\2') + value; });
  fs::remove_all(scratch);
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus CORPUS_DIR\n");
    return 2;
  }
  const fs::path corpus(argv[1]);

  int n = 0;
  for (const WireValue& value : SampleValues()) {
    WriteSeed(corpus / "wire_fuzz", "value-" + std::to_string(n++),
              ToWire(value).SerializeAsString());
  }

  const std::vector<std::string> formulas = {
      "1",           "A1",
      "A1+B2*3",     "sum(A1, 2, -B3)",
      "min(1,2)",    "max(A1,B1,C1)",
      "(1+2)*3",     "10/0",
      "7%0",         "9223372036854775807+1",
      "-(-(-1))",    "a_b1 - _c",
      "max(",        "1 +",
      "((A1)",       "sum()",
      "2*(3+4)/5%6", "A1 B1",
      "  12  ",      "-9223372036854775808",
  };
  n = 0;
  for (const std::string& formula : formulas) {
    WriteSeed(corpus / "formula_fuzz", "formula-" + std::to_string(n++), formula);
  }

  const std::vector<std::string> arguments = {
      "30",
      "\"text\"",
      "[1,2]",
      "{\"$ref\":\"12\"}",
      "{\"$ref\":\"12/i64/3\"}",
      "{\"$bytes\":\"aGk=\"}",
      "{\"$map\":{\"$ref\":1}}",
      "word",
      "1.5e3",
      "-0.0",
      "18446744073709551615",
      "[",
      "{\"a\":{\"b\":[null,true,false]}}",
      "12/list<i64>/0",
      "[[[[1]]]]",
      "\"\\u00e9\\ud83d\\ude00\"",
      "{\"$ref\":\"1//3\"}",
      "{}",
      "null",
  };
  n = 0;
  for (const std::string& argument : arguments) {
    WriteSeed(corpus / "cli_fuzz", "argument-" + std::to_string(n++), argument);
  }

  for (const auto& [name, bytes] : RecordSeeds(fs::temp_directory_path() / "turbine-make-corpus")) {
    WriteSeed(corpus / "record_fuzz", name, bytes);
  }
  std::printf("make_corpus: seeds written to %s\n", corpus.c_str());
  return 0;
}
