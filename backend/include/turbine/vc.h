// vc.h — Vc<T> and ResolvedVc<T>: typed, lazy handles to task outputs and cells.
//
// A Vc is 16 bytes and cheap to copy. `co_await vc` inside a task body waits until the
// task behind it is clean (strongly consistent), records the dependency, and yields a copy
// of the value (or rethrows the task's error as TaskError). `co_await vc.Resolve()` yields
// the ResolvedVc of the cell it points to. Outside task bodies, use Engine::Read.
//
// T may be a trait tag (a struct with `kTraitName`): a Vc<Trait> is only used as the
// receiver of trait methods, which dispatch on the value type of the cell it points to.
#pragma once

#include <concepts>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "turbine/error.h"
#include "turbine/internal/engine_api.h"
#include "turbine/raw_vc.h"
#include "turbine/value_type.h"

namespace turbine {

template <class T>
class ResolvedVc;

template <class T>
concept Trait = requires {
  { T::kTraitName } -> std::convertible_to<std::string_view>;
};

// A trait's name stands in for the value type of Vcs that point at "any implementation".
template <Trait T>
struct ValueTraits<T> {
  static std::string Name() { return std::string(T::kTraitName); }
};

namespace internal {

template <class T>
class ValueAwaiter {
 public:
  explicit ValueAwaiter(RawVc vc)
      : op_(vc, &ValueTypeOf<T>(), ReadOp::Mode::kValue, &CopyInto<T>, &value_) {}
  bool await_ready() { return op_.TryComplete(); }
  bool await_suspend(std::coroutine_handle<> awaiter) { return op_.Suspend(awaiter); }
  T await_resume() {
    op_.Resumed();
    if (!op_.ok()) ThrowTaskError(op_.error());
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;  // declared first: op_ points at it
  ReadOp op_;
};

// RawResolveAwaiter follows task outputs until it reaches a cell.
class RawResolveAwaiter {
 public:
  explicit RawResolveAwaiter(RawVc vc) : op_(vc, nullptr, ReadOp::Mode::kResolve) {}
  bool await_ready() { return op_.TryComplete(); }
  bool await_suspend(std::coroutine_handle<> awaiter) { return op_.Suspend(awaiter); }
  RawVc await_resume() {
    op_.Resumed();
    if (!op_.ok()) ThrowTaskError(op_.error());
    return op_.resolved();
  }

 private:
  ReadOp op_;
};

template <class T>
class ResolveAwaiter : public RawResolveAwaiter {
 public:
  using RawResolveAwaiter::RawResolveAwaiter;
  ResolvedVc<T> await_resume() {
    return ResolvedVc<T>::FromRaw(RawResolveAwaiter::await_resume());
  }
};

}  // namespace internal

template <class T>
class Vc {
 public:
  using value_type = T;

  Vc() = default;
  explicit Vc(RawVc raw) : raw_(raw) {}
  // Upcast to a trait (or between any two Vc types whose cells the caller vouches for).
  template <class U>
    requires(!std::same_as<T, U>) && Trait<T>
  Vc(const Vc<U>& other) : raw_(other.raw()) {}

  static Vc FromRaw(RawVc raw) { return Vc(raw); }
  RawVc raw() const { return raw_; }
  // For the engine's argument resolution only.
  RawVc* mutable_raw() { return &raw_; }
  bool is_resolved() const { return raw_.is_resolved(); }

  internal::ValueAwaiter<T> operator co_await() const
    requires(!Trait<T>)
  {
    return internal::ValueAwaiter<T>(raw_);
  }
  internal::ResolveAwaiter<T> Resolve() const { return internal::ResolveAwaiter<T>(raw_); }

  bool operator==(const Vc&) const = default;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(raw_);
  }

 private:
  RawVc raw_;
};

// ResolvedVc<T> is a Vc known to point at a cell. As a task parameter it makes the engine
// resolve the caller's Vc before the cache lookup, so tasks are keyed by the cell, not by
// the task that computed it.
template <class T>
class ResolvedVc : public Vc<T> {
 public:
  ResolvedVc() = default;
  // Accepts any Vc: a call with an unresolved one is resolved by the engine first.
  ResolvedVc(const Vc<T>& vc) : Vc<T>(vc) {}  // NOLINT: implicit, mirrors turbo-tasks
  static ResolvedVc FromRaw(RawVc raw) { return ResolvedVc(Vc<T>(raw)); }
};

template <class T>
uint64_t HashValue(const Vc<T>& vc, uint64_t seed) {
  return HashValue(vc.raw(), seed);
}

template <class T>
struct ValueTraits<Vc<T>> {
  static std::string Name() { return "vc<" + ValueTraits<T>::Name() + ">"; }
};
template <class T>
struct ValueTraits<ResolvedVc<T>> {
  static std::string Name() { return "resolved_" + ValueTraits<Vc<T>>::Name(); }
};

// A RawVc is persisted with its cell type's stable name (ids are process-local).
std::string ValueTypeNameOrEmpty(ValueTypeId id);
ValueTypeId ValueTypeIdByNameOrThrow(const std::string& name);

namespace internal {
// While set, every RawVc saved or loaded on this thread adds its task here: how the engine
// finds the tasks a stored record refers to inside values and arguments (persist.h).
inline thread_local std::vector<TaskId>* tls_vc_sink = nullptr;
inline void NoteVc(const RawVc& vc) {
  if (tls_vc_sink != nullptr && !vc.is_none()) tls_vc_sink->push_back(vc.task);
}
}  // namespace internal

template <class Archive>
void save(Archive& ar, const RawVc& vc) {
  ar(vc.task, ValueTypeNameOrEmpty(vc.type), vc.index);
  internal::NoteVc(vc);
}
template <class Archive>
void load(Archive& ar, RawVc& vc) {
  std::string type_name;
  ar(vc.task, type_name, vc.index);
  vc.type = ValueTypeIdByNameOrThrow(type_name);
  internal::NoteVc(vc);
}

// Cell stores `value` as a new cell of the running task and returns its address. The
// n-th cell of a type in one execution keeps its address across re-executions, which is
// what lets an equal value cut off invalidation.
template <class T>
ResolvedVc<T> Cell(T value) {
  return ResolvedVc<T>::FromRaw(
      internal::CreateCell(ValueTypeOf<T>(), std::make_shared<const T>(std::move(value))));
}

}  // namespace turbine
