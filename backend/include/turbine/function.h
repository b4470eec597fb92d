// function.h — registering task functions, methods and trait methods.
//
//   Task<int64_t> FibImpl(int64_t n);
//   inline const turbine::Function<FibImpl> fib{"demo.fib", /*version=*/1};
//
//   Task<Bytes> FileContentImpl(Vc<File> self);               // a method: receiver first
//   inline const turbine::Method<FileContentImpl> file_content{"File.content", 1};
//
//   struct Asset { static constexpr std::string_view kTraitName = "Asset"; };
//   inline const turbine::TraitMethod<Asset, Bytes> asset_content{"Asset.content", 1};
//   inline const turbine::TraitImpl asset_content_for_file{asset_content, file_content};
//
//   // A task whose result depends on the outside world (see FunctionOptions):
//   inline const turbine::Function<ReadFileImpl> read_file{
//       "fs.read", 1, "a file's bytes", {.session_dependent = true}};
//
// Calling `fib(30)` returns a Vc at once: the task is looked up (or created and scheduled)
// but not awaited. The (name, version) pair is the task's identity on disk: change the
// version whenever the function's meaning changes. Registration happens during static
// initialization; the objects must outlive every engine (make them `inline const`
// globals). Thread-safety: calling is safe from any thread that has a current engine.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "turbine/function_handle.h"
#include "turbine/internal/engine_api.h"
#include "turbine/internal/function_info.h"
#include "turbine/short_text.h"
#include "turbine/task.h"
#include "turbine/vc.h"

namespace turbine {

// FunctionOptions change how the engine treats a function's tasks.
struct FunctionOptions {
  // The result depends on the world outside the engine (a file, a clock, the network), not
  // only on what the task read through the engine. A result restored from an earlier
  // session is then not trusted: the task executes once more before it is served, and
  // its readers re-execute only if the result came out different (early cutoff). Within
  // a session the result stays cached until an Invalidator (see engine.h) says otherwise.
  bool session_dependent = false;
  // The function's tasks are reached only through other tasks' results, never asked for
  // again once those stop referring to them: a cache keyed by something that never
  // repeats, as fs.read's content is kept under the file's stat signature (fs.content). A
  // task whose stored record no other stored record refers to or read is then garbage
  // (superseded), and garbage collection removes it (see GcOptions).
  bool kept_while_referenced = false;
  // The result is this machine's: it reads the world outside the engine under a key that
  // names it only here (a file's content under its stat signature: inode and times mean
  // nothing on another machine). Such tasks are never fetched from or published to the
  // shared cache tier (shared_tier.h); their readers are, verified by the values read.
  bool machine_local = false;
};

namespace internal {

// OutputOf maps a task body's result type to the value type its callers' Vc holds.
template <class T>
struct OutputOf {
  using type = T;
  static constexpr bool kIsRef = false;
};
template <class T>
struct OutputOf<Vc<T>> {
  using type = T;
  static constexpr bool kIsRef = true;
};
template <class T>
struct OutputOf<ResolvedVc<T>> {
  using type = T;
  static constexpr bool kIsRef = true;
};

template <class T>
struct IsResolvedVc : std::false_type {};
template <class T>
struct IsResolvedVc<ResolvedVc<T>> : std::true_type {};

template <class T>
struct IsVc : std::false_type {};
template <class T>
struct IsVc<Vc<T>> : std::true_type {};
template <class T>
struct IsVc<ResolvedVc<T>> : std::true_type {};

template <class F>
struct FnTraits;
template <class R, class... A>
struct FnTraits<Task<R> (*)(A...)> {
  using Result = R;
  using Output = typename OutputOf<R>::type;
  using Args = std::tuple<std::decay_t<A>...>;
};

// DropFirst<tuple<R, A...>> = tuple<A...>: a method's arguments without its receiver.
template <class Tuple>
struct DropFirst;
template <class First, class... Rest>
struct DropFirst<std::tuple<First, Rest...>> {
  using type = std::tuple<Rest...>;
  using first = First;
};

template <class Tuple>
struct TupleOps;
template <class... A>
struct TupleOps<std::tuple<A...>> {
  using Tuple = std::tuple<A...>;
  static_assert((TaskInput<A> && ...),
                "every task argument must be a TaskInput (see value_type.h)");

  static uint64_t Hash(const void* args, uint64_t seed) {
    const Tuple& t = *static_cast<const Tuple*>(args);
    std::apply([&](const A&... a) { ((seed = HashValue(a, seed)), ...); }, t);
    return seed;
  }
  static bool Equal(const void* a, const void* b) {
    return SameValue(*static_cast<const Tuple*>(a), *static_cast<const Tuple*>(b));
  }
  static void MoveTo(void* args, void* place) {
    new (place) Tuple(std::move(*static_cast<Tuple*>(args)));
  }
  static void DestroyAt(void* place) { static_cast<Tuple*>(place)->~Tuple(); }
  static void Destroy(void* args) { delete static_cast<Tuple*>(args); }
  static void Serialize(const void* args, std::string* out) {
    SerializeTo(*static_cast<const Tuple*>(args), out);
  }
  static void* Deserialize(std::string_view bytes) {
    auto tuple = std::make_unique<Tuple>();
    if (!DeserializeFrom(bytes, tuple.get())) return nullptr;
    return tuple.release();
  }
  static void Describe(const void* args, std::string* out) {
    bool first = true;
    std::apply(
        [&](const A&... a) {
          (
              [&] {
                if (!first) out->append(", ");
                first = false;
                AppendShortText(a, out);
              }(),
              ...);
        },
        *static_cast<const Tuple*>(args));
    (void)first;  // no arguments
  }
  static bool NeedsResolution(const void* args) {
    if constexpr (kHasResolvedVc) {
      bool needs = false;
      std::apply(
          [&](const A&... a) {
            ((needs = needs || (IsResolvedVc<A>::value && !a.raw().is_resolved())), ...);
          },
          *static_cast<const Tuple*>(args));
      return needs;
    }
    return false;
  }
  // UnresolvedSlots lists the ResolvedVc arguments that still point at a task output.
  static std::vector<RawVc*> UnresolvedSlots(Tuple& t) {
    std::vector<RawVc*> slots;
    std::apply(
        [&](A&... a) {
          (
              [&] {
                if constexpr (IsResolvedVc<A>::value) {
                  if (!a.raw().is_resolved()) slots.push_back(a.mutable_raw());
                }
              }(),
              ...);
        },
        t);
    return slots;
  }
  static constexpr bool kHasResolvedVc = (IsResolvedVc<A>::value || ...);
  static std::vector<std::string> TypeNames() { return {ValueTraits<A>::Name()...}; }
  // Register registers every argument type now, so that values stored by an earlier
  // process decode before this one happens to touch the type.
  static void Register() { (ValueTypeOf<A>(), ...); }
};

template <class R>
void StoreResult(PromiseBase& base, ExecContext& context) {
  auto& promise = static_cast<typename Task<R>::promise_type&>(base);
  if constexpr (OutputOf<R>::kIsRef) {
    SetOutputRef(context, promise.result->raw());
  } else {
    SetOutputValue(context, ValueTypeOf<R>(),
                   std::make_shared<const R>(std::move(*promise.result)));
  }
}

template <class R>
void DestroyTask(std::coroutine_handle<PromiseBase> handle) {
  std::coroutine_handle<typename Task<R>::promise_type>::from_address(handle.address()).destroy();
}

template <class R>
ErasedTask Erase(Task<R> task) {
  auto typed = task.Release();
  return ErasedTask{std::coroutine_handle<PromiseBase>::from_address(typed.address()),
                    &StoreResult<R>, &DestroyTask<R>};
}

// ResolveThenCall is the body of a kResolveFirst task: resolve every ResolvedVc argument
// (each await records a dependency), then call the target; the output refers to its output.
template <class Out, class Tuple>
Task<Vc<Out>> ResolveThenCall(const FunctionInfo* target, RawVc receiver, Tuple args) {
  for (RawVc* slot : TupleOps<Tuple>::UnresolvedSlots(args)) {
    *slot = co_await RawResolveAwaiter(*slot);
  }
  co_return Vc<Out>(Call(*target, receiver, &args));
}

// DispatchThenCall is the body of a trait method's dispatch task.
template <class Out, class Tuple>
Task<Vc<Out>> DispatchThenCall(const FunctionInfo* trait_fn, RawVc receiver, Tuple args) {
  RawVc self = co_await RawResolveAwaiter(receiver);
  const FunctionInfo* impl = DispatchTrait(trait_fn->trait_slot, self.type);
  if (impl == nullptr) {
    const ValueType* type = ValueTypeById(self.type);
    Fail("value type '" + (type ? type->name : std::string("?")) + "' does not implement " +
         trait_fn->name);
  }
  co_return Vc<Out>(Call(*impl, self, &args));
}

// FillArgs sets what depends on the argument tuple's type.
template <class Tuple>
void FillArgs(FunctionInfo& info) {
  using Ops = TupleOps<Tuple>;
  Ops::Register();
  info.param_types = Ops::TypeNames();
  info.args_type = ArgsTypeTag<Tuple>();
  info.hash_args = &Ops::Hash;
  info.equal_args = &Ops::Equal;
  static_assert(alignof(Tuple) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                "a task argument type is over-aligned");
  info.args_size = sizeof(Tuple);
  info.args_align = alignof(Tuple);
  info.move_args_to = &Ops::MoveTo;
  info.destroy_args_at = &Ops::DestroyAt;
  info.destroy_args = &Ops::Destroy;
  info.serialize_args = &Ops::Serialize;
  info.deserialize_args = &Ops::Deserialize;
  info.needs_resolution = &Ops::NeedsResolution;
  info.describe_args = &Ops::Describe;
}

// FillCommon sets what every kind of function shares: identity, description, options,
// result and argument types.
template <class Out, class Tuple>
void FillCommon(FunctionInfo& info, std::string_view name, uint32_t version,
                std::string_view description, bool has_receiver, FunctionOptions options) {
  info.name = std::string(name);
  info.version = version;
  info.description = std::string(description);
  info.session_dependent = options.session_dependent;
  info.kept_while_referenced = options.kept_while_referenced;
  info.machine_local = options.machine_local;
  info.has_receiver = has_receiver;
  info.result_type = ValueTraits<Out>::Name();
  FillArgs<Tuple>(info);
}

// RegisterResultType registers a result (or receiver) type up front; traits have none.
template <class T>
void RegisterResultType() {
  if constexpr (!Trait<T>) ValueTypeOf<T>();
}

// AttachResolver builds and registers the kResolveFirst twin of `target`.
template <class Out, class Tuple>
void AttachResolver(FunctionInfo& target, FunctionInfo& resolver) {
  resolver.name = target.name + "#resolve";
  resolver.version = target.version;
  resolver.description = "resolves the ResolvedVc arguments of " + target.name;
  resolver.has_receiver = target.has_receiver;
  resolver.session_dependent = false;  // it only resolves; the target decides
  resolver.kind = FunctionKind::kResolveFirst;
  resolver.result_type = target.result_type;
  FillArgs<Tuple>(resolver);
  resolver.target = &target;
  resolver.invoke = [](const FunctionInfo& self, RawVc receiver, const void* args) {
    return Erase(
        ResolveThenCall<Out, Tuple>(self.target, receiver, *static_cast<const Tuple*>(args)));
  };
  RegisterFunction(&resolver);
  target.resolver = &resolver;
}

// CallWith builds the argument tuple on the caller's stack and enters the engine.
template <class Tuple, class... A>
RawVc CallWith(const FunctionInfo& info, RawVc receiver, A&&... args) {
  Tuple stack_args(std::forward<A>(args)...);
  return Call(info, receiver, &stack_args);
}

}  // namespace internal

// Function registers a free task function `F` (no receiver).
template <auto F>
class Function {
  using Traits = internal::FnTraits<decltype(F)>;
  using Args = typename Traits::Args;

 public:
  using Output = typename Traits::Output;

  using Params = Args;  // the parameters, as a tuple

  Function(std::string_view name, uint32_t version, std::string_view description = "",
           FunctionOptions options = {}) {
    internal::RegisterResultType<Output>();
    internal::FillCommon<Output, Args>(info_, name, version, description,
                                       /*has_receiver=*/false, options);
    info_.invoke = [](const internal::FunctionInfo&, RawVc, const void* args) {
      return internal::Erase(std::apply(F, *static_cast<const Args*>(args)));
    };
    internal::RegisterFunction(&info_);
    if constexpr (internal::TupleOps<Args>::kHasResolvedVc) {
      internal::AttachResolver<Output, Args>(info_, resolver_);
    }
  }
  Function(const Function&) = delete;
  Function& operator=(const Function&) = delete;

  template <class... A>
  Vc<Output> operator()(A&&... args) const {
    return Vc<Output>(internal::CallWith<Args>(info_, RawVc{}, std::forward<A>(args)...));
  }

  FunctionHandle handle() const { return internal::HandleOf(info_); }
  const internal::FunctionInfo& info() const { return info_; }

 private:
  internal::FunctionInfo info_;
  internal::FunctionInfo resolver_;  // used only with ResolvedVc parameters
};

// Method registers a task function whose first parameter is its receiver, Vc<Self>.
template <auto F>
class Method {
  using Traits = internal::FnTraits<decltype(F)>;
  using AllArgs = typename Traits::Args;
  using Args = typename internal::DropFirst<AllArgs>::type;
  using Receiver = typename internal::DropFirst<AllArgs>::first;
  static_assert(internal::IsVc<Receiver>::value,
                "a Method's first parameter is its receiver: Vc<Self> or ResolvedVc<Self>");

 public:
  using Self = typename Receiver::value_type;
  using Output = typename Traits::Output;
  using ArgsTuple = Args;

  using Params = Args;  // the parameters after the receiver, as a tuple

  Method(std::string_view name, uint32_t version, std::string_view description = "",
         FunctionOptions options = {}) {
    internal::RegisterResultType<Output>();
    internal::RegisterResultType<Self>();
    internal::FillCommon<Output, Args>(info_, name, version, description,
                                       /*has_receiver=*/true, options);
    info_.invoke = [](const internal::FunctionInfo&, RawVc receiver, const void* args) {
      return internal::Erase(
          std::apply([&](const auto&... a) { return F(Receiver::FromRaw(receiver), a...); },
                     *static_cast<const Args*>(args)));
    };
    internal::RegisterFunction(&info_);
    if constexpr (internal::TupleOps<Args>::kHasResolvedVc) {
      internal::AttachResolver<Output, Args>(info_, resolver_);
    }
  }
  Method(const Method&) = delete;
  Method& operator=(const Method&) = delete;

  template <class... A>
  Vc<Output> operator()(Vc<Self> self, A&&... args) const {
    return Vc<Output>(internal::CallWith<Args>(info_, self.raw(), std::forward<A>(args)...));
  }

  FunctionHandle handle() const { return internal::HandleOf(info_); }
  const internal::FunctionInfo& info() const { return info_; }

 private:
  internal::FunctionInfo info_;
  internal::FunctionInfo resolver_;
};

// TraitMethod declares a method of trait `T` returning `Out`, taking `Args...` after the
// receiver. Calling it creates a dispatch task that resolves the receiver and forwards to
// the implementation registered (with TraitImpl) for the receiver cell's value type.
template <class T, class Out, class... Args>
requires Trait<T>
class TraitMethod {
  using ArgsTuple = std::tuple<Args...>;

 public:
  using Output = Out;
  using Params = ArgsTuple;  // the parameters after the receiver, as a tuple

  // No FunctionOptions: a dispatch task only forwards; implementations carry the options.
  TraitMethod(std::string_view name, uint32_t version, std::string_view description = "") {
    internal::FillCommon<Out, ArgsTuple>(info_, name, version, description,
                                         /*has_receiver=*/true, {});
    info_.kind = internal::FunctionKind::kTraitDispatch;
    info_.trait_slot = internal::NewTraitSlot(info_.name);
    info_.invoke = [](const internal::FunctionInfo& self, RawVc receiver, const void* args) {
      return internal::Erase(internal::DispatchThenCall<Out, ArgsTuple>(
          &self, receiver, *static_cast<const ArgsTuple*>(args)));
    };
    internal::RegisterFunction(&info_);
  }
  TraitMethod(const TraitMethod&) = delete;
  TraitMethod& operator=(const TraitMethod&) = delete;

  template <class... A>
  Vc<Out> operator()(Vc<T> self, A&&... args) const {
    return Vc<Out>(internal::CallWith<ArgsTuple>(info_, self.raw(), std::forward<A>(args)...));
  }

  FunctionHandle handle() const { return internal::HandleOf(info_); }
  const internal::FunctionInfo& info() const { return info_; }

 private:
  internal::FunctionInfo info_;
};

// TraitImpl binds a Method as the implementation of a TraitMethod for the method's Self.
class TraitImpl {
 public:
  template <class T, class Out, class... Args, auto F>
  TraitImpl(const TraitMethod<T, Out, Args...>& trait_method, const Method<F>& method) {
    static_assert(std::is_same_v<typename Method<F>::Output, Out>,
                  "the implementation must return the trait method's type");
    static_assert(std::is_same_v<typename Method<F>::Params, std::tuple<Args...>>,
                  "the implementation must take the trait method's parameters");
    internal::RegisterTraitImpl(trait_method.info().trait_slot,
                                ValueTypeOf<typename Method<F>::Self>().id, &method.info());
  }
};

}  // namespace turbine
