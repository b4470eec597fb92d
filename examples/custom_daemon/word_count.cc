// word_count.cc — the task functions wordcountd serves.
//
//   words.count(doc)    the number of words in input `doc` (a string, set with SetInputs)
//   words.total(docs)   the sum of words.count over a list of documents
//
// words.total depends on one words.count task per document, so setting one document
// recounts only that document, and a change that keeps its count stops there: words.total
// does not run again (early cutoff).
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "turbine/engine.h"
#include "turbine/server/export.h"
#include "turbine/server/wire_value.h"

namespace wordcount {
namespace {

using turbine::Task;
using turbine::Vc;

int64_t CountWords(const std::string& text) {
  int64_t words = 0;
  bool in_word = false;
  for (const char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// Inputs set over the wire are WireValues: the client chose their shape, so check it.
Task<int64_t> CountImpl(std::string doc) {
  const turbine::WireValue text = co_await turbine::Input<turbine::WireValue>(doc);
  if (!text.is<std::string>()) {
    turbine::Fail("words.count: input '" + doc + "' must be a string");
  }
  co_return CountWords(text.as<std::string>());
}
const turbine::Function<CountImpl> count{"words.count", 1, "the number of words in input doc"};
const turbine::server::Export export_count{count, {"doc"}};

Task<int64_t> TotalImpl(std::vector<std::string> docs) {
  // Ask for every count before awaiting any, so the engine can compute them in parallel.
  std::vector<Vc<int64_t>> counts;
  counts.reserve(docs.size());
  for (const std::string& doc : docs) counts.push_back(count(doc));
  int64_t total = 0;
  for (Vc<int64_t>& words : counts) {
    const int64_t n = co_await words;
    total += n;
  }
  co_return total;
}
const turbine::Function<TotalImpl> total{"words.total", 1, "the words in all of docs"};
const turbine::server::Export export_total{total, {"docs"}};

}  // namespace
}  // namespace wordcount
