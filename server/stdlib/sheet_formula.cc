// sheet_formula.cc — a recursive-descent parser and a left-to-right evaluator.
#include "sheet_formula.h"

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

#include "turbine/error.h"
#include "turbine/text.h"

namespace turbine::stdlib::sheet {
namespace {

// Nesting (parentheses, unary minus, function arguments) is bounded so that a hostile
// formula cannot exhaust a worker's stack in the parser or the evaluator.
constexpr int kMaxNesting = 200;

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// SyntaxError unwinds the parser to Parse, which turns it into a status.
struct SyntaxError {
  std::string message;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::StatusOr<Formula> Parse() {
    try {
      Formula formula;
      formula.root = ParseSum();
      SkipSpace();
      if (pos_ < text_.size()) Unexpected("an operator or the end of the formula");
      formula.refs = std::move(refs_);
      return formula;
    } catch (const SyntaxError& error) {
      return absl::InvalidArgumentError(error.message);
    }
  }

 private:
  Expr ParseSum() { return ParseChain("+-", &Parser::ParseProduct); }
  Expr ParseProduct() { return ParseChain("*/%", &Parser::ParseUnary); }

  Expr ParseChain(std::string_view ops, Expr (Parser::*operand)()) {
    Expr first = (this->*operand)();
    SkipSpace();
    if (pos_ >= text_.size() || ops.find(text_[pos_]) == std::string_view::npos) return first;
    Expr chain;
    chain.kind = Expr::Kind::kChain;
    chain.operands.push_back(std::move(first));
    while (pos_ < text_.size() && ops.find(text_[pos_]) != std::string_view::npos) {
      chain.ops.push_back(text_[pos_++]);
      chain.operands.push_back((this->*operand)());
      SkipSpace();
    }
    return chain;
  }

  Expr ParseUnary() {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '-') {
      Enter();
      ++pos_;
      Expr negate;
      negate.kind = Expr::Kind::kNegate;
      negate.operands.push_back(ParseUnary());
      --depth_;
      return negate;
    }
    return ParsePrimary();
  }

  Expr ParsePrimary() {
    SkipSpace();
    if (pos_ >= text_.size()) Unexpected("a number, a cell name, '(' or '-'");
    const char c = text_[pos_];
    if (IsDigit(c)) return ParseNumber();
    if (c == '(') {
      Enter();
      ++pos_;
      Expr inner = ParseSum();
      Expect(')', "')'");
      --depth_;
      return inner;
    }
    if (!IsNameStart(c)) Unexpected("a number, a cell name, '(' or '-'");
    const size_t start = pos_;
    while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
    std::string name(text_.substr(start, pos_ - start));
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '(') return ParseCall(std::move(name), start);
    if (refs_seen_.insert(name).second) refs_.push_back(name);
    Expr cell;
    cell.kind = Expr::Kind::kCell;
    cell.name = std::move(name);
    return cell;
  }

  Expr ParseCall(std::string name, size_t start) {
    if (name != "sum" && name != "min" && name != "max") {
      Error(start, "unknown function '" + Echo(name) + "' (there are sum, min and max)");
    }
    Enter();
    ++pos_;  // '('
    Expr call;
    call.kind = Expr::Kind::kCall;
    call.name = std::move(name);
    call.operands.push_back(ParseSum());
    SkipSpace();
    while (pos_ < text_.size() && text_[pos_] == ',') {
      ++pos_;
      call.operands.push_back(ParseSum());
      SkipSpace();
    }
    Expect(')', "',' or ')'");
    --depth_;
    return call;
  }

  Expr ParseNumber() {
    const size_t start = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    Expr number;
    const auto [end, ec] =
        std::from_chars(text_.data() + start, text_.data() + pos_, number.number);
    if (ec != std::errc()) {
      Error(start, "the number " + Echo(text_.substr(start, pos_ - start)) +
                       " does not fit in 64 bits");
    }
    return number;
  }

  void Enter() {
    if (++depth_ > kMaxNesting) {
      Error(pos_, "the formula nests deeper than " + std::to_string(kMaxNesting) + " levels");
    }
  }

  void Expect(char c, std::string_view expected) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != c) Unexpected(expected);
    ++pos_;
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  [[noreturn]] void Unexpected(std::string_view expected) {
    std::string found = "the end of the formula";
    if (pos_ < text_.size()) {
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c >= 0x20 && c < 0x7f) {
        found = std::string("'") + static_cast<char>(c) + "'";
      } else {
        constexpr char kHex[] = "0123456789abcdef";
        found = std::string("byte 0x") + kHex[c >> 4] + kHex[c & 15];
      }
    }
    Error(pos_, "expected " + std::string(expected) + ", found " + found);
  }

  [[noreturn]] void Error(size_t pos, const std::string& what) {
    throw SyntaxError{"syntax error at position " + std::to_string(pos + 1) + ": " + what};
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::vector<std::string> refs_;
  absl::flat_hash_set<std::string> refs_seen_;
};

// Evaluator is Evaluate with the cell name and reader at hand.
class Evaluator {
 public:
  Evaluator(std::string_view cell, CellReader read) : cell_(cell), read_(read) {}

  int64_t Eval(const Expr& expr) {
    switch (expr.kind) {
      case Expr::Kind::kNumber:
        return expr.number;
      case Expr::Kind::kCell:
        return read_(expr.name);
      case Expr::Kind::kNegate: {
        const int64_t value = Eval(expr.operands[0]);
        if (value == std::numeric_limits<int64_t>::min()) {
          Error("integer overflow in -(" + std::to_string(value) + ")");
        }
        return -value;
      }
      case Expr::Kind::kChain: {
        int64_t result = Eval(expr.operands[0]);
        for (size_t i = 0; i < expr.ops.size(); ++i) {
          result = Apply(expr.ops[i], result, Eval(expr.operands[i + 1]));
        }
        return result;
      }
      case Expr::Kind::kCall:
        return Call(expr);
    }
    Error("unknown expression");
  }

 private:
  int64_t Apply(char op, int64_t a, int64_t b) {
    int64_t result = 0;
    bool overflow = false;
    switch (op) {
      case '+':
        overflow = __builtin_add_overflow(a, b, &result);
        break;
      case '-':
        overflow = __builtin_sub_overflow(a, b, &result);
        break;
      case '*':
        overflow = __builtin_mul_overflow(a, b, &result);
        break;
      case '/':
        if (b == 0) Error("division by zero");
        overflow = a == std::numeric_limits<int64_t>::min() && b == -1;
        if (!overflow) result = a / b;
        break;
      case '%':
        if (b == 0) Error("modulo by zero");
        // INT64_MIN % -1 is undefined in C++ (the quotient overflows); the remainder is 0.
        result = b == -1 ? 0 : a % b;
        break;
    }
    if (overflow) {
      Error("integer overflow in " + std::to_string(a) + " " + op + " " + std::to_string(b));
    }
    return result;
  }

  int64_t Call(const Expr& call) {
    // Every argument first, left to right: an argument's error comes before an overflow.
    std::vector<int64_t> values;
    values.reserve(call.operands.size());
    for (const Expr& operand : call.operands) values.push_back(Eval(operand));
    if (call.name == "min") return *std::min_element(values.begin(), values.end());
    if (call.name == "max") return *std::max_element(values.begin(), values.end());
    int64_t total = 0;
    for (int64_t value : values) {
      if (__builtin_add_overflow(total, value, &total)) Error("integer overflow in sum");
    }
    return total;
  }

  [[noreturn]] void Error(const std::string& what) {
    Fail("cell " + Echo(cell_) + ": " + what);
  }

  std::string_view cell_;
  CellReader read_;
};

}  // namespace

absl::StatusOr<Formula> ParseFormula(std::string_view text) { return Parser(text).Parse(); }

bool IsCellName(std::string_view name) {
  return !name.empty() && IsNameStart(name[0]) && std::all_of(name.begin(), name.end(), IsNameChar);
}

int64_t Evaluate(const Expr& expr, std::string_view cell, CellReader read) {
  return Evaluator(cell, read).Eval(expr);
}

}  // namespace turbine::stdlib::sheet
