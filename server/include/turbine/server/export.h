// export.h — making task functions callable over the protocol.
//
//   inline const turbine::Function<FibImpl> fib{"demo.fib", 1, "the n-th Fibonacci number"};
//   inline const turbine::server::Export export_fib{fib, {"n"}};
//
// An Export registers the function with every Server in the process (at static
// initialization, like the function itself). Each argument type must be WireConvertible
// (wire.h); the result may be any value type (one the wire cannot carry is answered with
// its task reference). Methods and trait methods take their receiver as the call's
// `this_ref`. The parameter names are for `ListFunctions` and error messages.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/repeated_ptr_field.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "turbine/engine.h"
#include "turbine/function.h"
#include "turbine/server/wire.h"
#include "turbine/v1/turbine.pb.h"

namespace turbine::server {

using WireArgs = google::protobuf::RepeatedPtrField<v1::Value>;

// ExportedFunction is the type-erased record an Export adds to the registry.
struct ExportedFunction {
  FunctionHandle fn;
  std::vector<std::string> param_names;
  std::string receiver_type;  // the Self of a method, the trait of a trait method
  // Converts `args` and calls the function on `engine`; reports where the task was found.
  // Errors name the parameter.
  absl::StatusOr<RawVc> (*call)(const ExportedFunction& self, Engine& engine, RawVc receiver,
                                const WireArgs& args, CallSource* source) = nullptr;
  // Converts a result of the function's output type; false if the type has no wire form.
  bool (*result_to_wire)(const void* value, v1::Value* out) = nullptr;
  const ValueType* result_type = nullptr;  // null for a trait (any implementation)
};

// FindExported finds an exported function by name: `version` 0 means the highest.
const ExportedFunction* FindExported(std::string_view name, uint32_t version = 0);
// AllExported lists every exported function, sorted by name and version.
std::vector<const ExportedFunction*> AllExported();

// A CatchUpHook runs before the service reads the result of a request (a call, a watch's
// first read): it brings news of outside changes made before the request into the engine,
// so that a client that writes a file and then calls is not answered from before the
// write. The file functions register the file watcher's (it waits for the events the
// kernel has already queued). Static, like Export; hooks must be cheap when idle.
class CatchUpHook {
 public:
  explicit CatchUpHook(void (*catch_up)());
};
// CatchUpWithOutsideChanges runs every registered hook.
void CatchUpWithOutsideChanges();

// An OwnDirectoryHook is told, as a Server opens, the directory it keeps its own files in
// (its data directory, absolute): the file functions' watcher ignores changes there, which
// the daemon's own writes make all the time (a tree.summary of a project that holds its
// .turbine would otherwise run again at every call). Static, like Export.
class OwnDirectoryHook {
 public:
  explicit OwnDirectoryHook(void (*own)(const std::string& dir));
};
// TellOwnDirectory runs every registered OwnDirectoryHook.
void TellOwnDirectory(const std::string& dir);

namespace export_detail {

void Register(ExportedFunction* exported);

template <class Tuple>
struct AllWireConvertible;
template <class... A>
struct AllWireConvertible<std::tuple<A...>> : std::bool_constant<(WireConvertible<A> && ...)> {};

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

// RequiredArity counts the parameters before the trailing std::optional ones, which a
// caller may leave out (they are then empty).
template <class Tuple, size_t N = std::tuple_size_v<Tuple>>
constexpr size_t RequiredArity() {
  if constexpr (N == 0) {
    return 0;
  } else if constexpr (IsOptional<std::tuple_element_t<N - 1, Tuple>>::value) {
    return RequiredArity<Tuple, N - 1>();
  } else {
    return N;
  }
}

template <class Args, size_t... I>
absl::Status ArgsFromWire(const ExportedFunction& self, const WireArgs& wire, Args& args,
                          std::index_sequence<I...>) {
  absl::Status status = absl::OkStatus();
  (
      [&] {
        if (!status.ok() || static_cast<int>(I) >= wire.size()) return;
        using T = std::tuple_element_t<I, Args>;
        absl::Status converted = Wire<T>::From(wire.Get(static_cast<int>(I)), &std::get<I>(args));
        if (!converted.ok()) {
          status = absl::InvalidArgumentError(
              self.fn.name() + ": argument " + std::to_string(I + 1) + " (" + self.param_names[I] +
              ": " + self.fn.param_types()[I] + "): " + std::string(converted.message()));
        }
      }(),
      ...);
  return status;
}

// RefTarget<T>::type is what a Vc<T> or ResolvedVc<T> parameter refers to (void otherwise).
template <class T>
struct RefTarget {
  using type = void;
};
template <class T>
struct RefTarget<Vc<T>> {
  using type = T;
};
template <class T>
struct RefTarget<ResolvedVc<T>> {
  using type = T;
};

// RefsHoldTheirTypes refuses a task reference whose type is known and is not the one its
// parameter takes (an i64 task given for a Vc<std::string>): the caller's mistake, said
// now, rather than a failure of the body cached under the call. A reference whose type
// only reading tells (an input, a trait's result) is checked when the body reads it.
template <class Args, size_t... I>
absl::Status RefsHoldTheirTypes(const ExportedFunction& self, [[maybe_unused]] Engine& engine,
                                [[maybe_unused]] const Args& args, [[maybe_unused]] size_t given,
                                std::index_sequence<I...>) {
  absl::Status status = absl::OkStatus();
  (
      [&] {
        using Target = typename RefTarget<std::tuple_element_t<I, Args>>::type;
        if constexpr (!std::is_void_v<Target> && !Trait<Target>) {
          if (!status.ok() || I >= given) return;
          const RawVc vc = std::get<I>(args).raw();
          const ValueType* declared = engine.DeclaredType(vc);
          const ValueType& expected = ValueTypeOf<Target>();
          if (declared != nullptr && declared != &expected) {
            status = absl::InvalidArgumentError(
                self.fn.name() + ": argument " + std::to_string(I + 1) + " (" +
                self.param_names[I] + ": " + self.fn.param_types()[I] + "): task " +
                std::to_string(vc.task) + " holds " + declared->name + ", not " + expected.name);
          }
        }
      }(),
      ...);
  return status;
}

template <class Args>
absl::StatusOr<RawVc> CallFromWire(const ExportedFunction& self, Engine& engine, RawVc receiver,
                                   const WireArgs& wire, CallSource* source) {
  constexpr size_t kArity = std::tuple_size_v<Args>;
  constexpr size_t kRequired = RequiredArity<Args>();
  const size_t given = static_cast<size_t>(wire.size());
  if (given < kRequired || given > kArity) {
    std::string signature;
    for (size_t i = 0; i < kArity; ++i) {
      signature += (i > 0 ? ", " : "") + self.param_names[i] + ": " + self.fn.param_types()[i];
    }
    const std::string count = kRequired == kArity
                                  ? std::to_string(kArity)
                                  : std::to_string(kRequired) + " to " + std::to_string(kArity);
    return absl::InvalidArgumentError(self.fn.name() + " takes " + count + " argument(s) (" +
                                      signature + "), got " + std::to_string(given));
  }
  Args args{};
  absl::Status status = ArgsFromWire(self, wire, args, std::make_index_sequence<kArity>());
  if (status.ok()) {
    status = RefsHoldTheirTypes(self, engine, args, given, std::make_index_sequence<kArity>());
  }
  if (!status.ok()) return status;
  return engine.Call(self.fn, receiver, args, source);
}

template <class Out>
bool ResultToWire(const void* value, v1::Value* out) {
  if constexpr (WireConvertible<Out>) {
    Wire<Out>::To(*static_cast<const Out*>(value), out);
    return true;
  } else {
    return false;
  }
}

std::vector<std::string> NamesOrDefault(std::initializer_list<std::string_view> names, size_t arity,
                                        const std::string& function);

}  // namespace export_detail

class Export {
 public:
  template <auto F>
  Export(const Function<F>& fn, std::initializer_list<std::string_view> param_names = {}) {
    Fill<typename Function<F>::Params, typename Function<F>::Output>(fn.handle(), param_names, "");
  }

  template <auto F>
  Export(const Method<F>& method, std::initializer_list<std::string_view> param_names = {}) {
    Fill<typename Method<F>::Params, typename Method<F>::Output>(
        method.handle(), param_names, ValueTraits<typename Method<F>::Self>::Name());
  }

  template <class T, class Out, class... A>
  Export(const TraitMethod<T, Out, A...>& method,
         std::initializer_list<std::string_view> param_names = {}) {
    Fill<std::tuple<A...>, Out>(method.handle(), param_names, std::string(T::kTraitName));
  }

  Export(const Export&) = delete;
  Export& operator=(const Export&) = delete;

 private:
  template <class Args, class Out>
  void Fill(FunctionHandle fn, std::initializer_list<std::string_view> names,
            std::string receiver_type) {
    static_assert(export_detail::AllWireConvertible<Args>::value,
                  "every argument of an exported function must be WireConvertible (wire.h)");
    exported_.fn = fn;
    exported_.param_names =
        export_detail::NamesOrDefault(names, std::tuple_size_v<Args>, fn.name());
    exported_.receiver_type = std::move(receiver_type);
    exported_.call = &export_detail::CallFromWire<Args>;
    exported_.result_to_wire = &export_detail::ResultToWire<Out>;
    // A trait method's result is whichever implementation's type the receiver chose.
    if constexpr (!Trait<Out>) exported_.result_type = &ValueTypeOf<Out>();
    export_detail::Register(&exported_);
  }

  ExportedFunction exported_;
};

}  // namespace turbine::server
