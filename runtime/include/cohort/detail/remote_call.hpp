// The one remote-call protocol: how a call crosses to another process of the same program. A call frame
// names two functions by their address relative to the module (executable or shared library) that holds
// them, which is the same in every process running that build, whatever ASLR did:
//   - the entry: an instance of remote_entry<F, Args...>, generated for each callable type and argument
//     list at the call site, which knows how to decode the arguments and call;
//   - the target: the function pointer to call, or nothing for a captureless lambda or other stateless
//     callable, which the entry default-constructs.
// The arguments travel as cereal binary data; an entry that returns a value appends it as a codec frame.
// Process targets, pool tasks, process actors and manager calls all travel this way.
#pragma once

#include <cereal/access.hpp>
#include <cereal/details/traits.hpp>

#include <concepts>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/stored_call.hpp"

namespace cohort::detail {

/// Where a function lives: the module's path as the dynamic linker names it (empty for the executable)
/// and the offset from that module's load address.
struct FunctionAddress {
  std::string module;
  std::uint64_t offset = 0;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(module, offset);
  }
};

/// The address of a function of this process as another process of the same build can find it.
/// ProcessError if it is not inside a loaded module (a JIT-compiled or otherwise synthesized function).
FunctionAddress address_of(const void* function);
/// The inverse, in the receiving process. SerializationError if the module is not loaded here or the
/// offset does not point into its code.
const void* resolve(const FunctionAddress& address);

/// Decodes arguments and calls. `target`: the resolved function pointer (null for stateless callables);
/// `result`: where a returned value is appended, or null to discard it.
using RemoteEntry = void (*)(const void* target, std::string_view arguments, std::string* result);

struct CallFrame {
  std::string name;  // set for functions registered with COHORT_REMOTE: the receiver looks them up by it
  FunctionAddress entry;
  bool has_target = false;
  FunctionAddress target;
  std::string arguments;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(name, entry, has_target, target, arguments);
  }
};

/// Callables that can be named in another process: function pointers, and empty class types that can be
/// default-constructed there (captureless lambdas, stateless function objects).
template <class F>
inline constexpr bool is_function_pointer_v = std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;
template <class F>
inline constexpr bool is_stateless_callable_v =
    std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F>;
template <class F>
inline constexpr bool is_remote_callable_v = is_function_pointer_v<F> || is_stateless_callable_v<F>;

/// Whether cereal can write T with cohort's archive and read it back into a T it constructs.
template <class T>
inline constexpr bool is_transferable_v = cereal::traits::is_output_serializable<T, BinaryWriter>::value &&
                                          cereal::traits::is_input_serializable<T, BinaryReader>::value;

/// Constructs an argument to load into: publicly default-constructible types, or types that befriend
/// cereal::access (a Barrier, say, whose default state makes no sense to users).
template <class T>
std::unique_ptr<T> construct_for_loading() {
  if constexpr (std::is_default_constructible_v<T>)
    return std::make_unique<T>();
  else
    return std::unique_ptr<T>(cereal::access::construct<T>());
}

/// The arguments of a call, decoded from its frame; SerializationError when they are not `Args...`.
template <class... Args>
std::tuple<std::unique_ptr<Args>...> decode_arguments(std::string_view arguments) {
  std::tuple<std::unique_ptr<Args>...> loaded{construct_for_loading<Args>()...};
  BinaryReader archive(arguments);
  try {
    std::apply([&](auto&... values) { (archive(*values), ...); }, loaded);
  } catch (...) {
    rethrow_as_serialization_error(type_name<std::tuple<Args...>>(), true);
  }
  if (archive.remaining() != 0) throw_trailing_bytes(type_name<std::tuple<Args...>>(), archive.remaining());
  return loaded;
}

template <class F, class... Args>
void remote_entry(const void* target, std::string_view arguments, std::string* result) {
  // If you get an error on the following line, the function cannot be called with the arguments given.
  static_assert(stored_call<F, Args...>::callable,
                "cohort: fn(args...) is not a valid call for a process: check the number and the types of the "
                "arguments (each is passed as an rvalue of its type, or as an lvalue to a T& parameter)");
  auto loaded = decode_arguments<Args...>(arguments);
  // The decoded arguments are used once: they are passed as a Process's stored arguments are, as
  // rvalues (a by-value parameter takes its argument without a copy) except to T& parameters.
  const auto call = [&]() -> decltype(auto) {
    F function = [&] {
      if constexpr (is_function_pointer_v<F>)
        return reinterpret_cast<F>(const_cast<void*>(target));
      else
        return F{};
    }();
    if constexpr (stored_call<F, Args...>::callable)
      return std::apply([&](auto&... values) -> decltype(auto) { return invoke_stored(function, *values...); }, loaded);
  };
  using R = decltype(call());
  if constexpr (std::is_void_v<R>) {
    call();
  } else {
    auto value = call();
    if (result) dump_to(*result, value);
  }
}

/// Names `function` for COHORT_REMOTE; returns true so that the macro can keep it in a static.
bool register_remote_function(const char* name, RemoteEntry entry, const void* function);
/// The name `function` was registered under, if any.
const std::string* remote_name_of(const void* function) noexcept;

template <class R, class... Params>
bool register_remote(const char* name, R (*function)(Params...)) {
  return register_remote_function(name, &remote_entry<R (*)(Params...), std::decay_t<Params>...>,
                                  reinterpret_cast<const void*>(function));
}

/// An argument as the parameter it is passed to: converted when its type differs (an int for a long).
template <class Param, class Arg>
decltype(auto) as_parameter(const Arg& arg) {
  if constexpr (std::is_same_v<std::decay_t<Param>, Arg>)
    return (arg);
  else
    return std::decay_t<Param>(arg);
}

/// The frame of a call of `function` with arguments of types `Args...`, without the arguments: the entry
/// that decodes them and the function, by address and, if registered with COHORT_REMOTE, by name.
template <class F, class... Args>
CallFrame call_header(const F& function) {
  CallFrame frame;
  frame.entry = address_of(reinterpret_cast<const void*>(&remote_entry<F, Args...>));
  if constexpr (is_function_pointer_v<F>) {
    frame.has_target = true;
    frame.target = address_of(reinterpret_cast<const void*>(function));
    if (const auto* name = remote_name_of(reinterpret_cast<const void*>(function))) frame.name = *name;
  }
  return frame;
}

/// A call frame for `function(args...)`. Arguments that hold descriptors export them into the
/// FdTransferScope active on this thread. A function registered with COHORT_REMOTE travels by its name,
/// its arguments converted to its parameter types, so that a worker built apart finds the same entry.
template <class F, class... Args>
  requires is_remote_callable_v<F> && (is_transferable_v<Args> && ...)
CallFrame make_call(const F& function, const Args&... args) {
  CallFrame frame = call_header<F, Args...>(function);
  BinaryWriter archive(frame.arguments);
  const auto write = [&](const auto&... values) {
    try {
      (archive(values), ...);
    } catch (...) {
      rethrow_as_serialization_error(type_name<std::tuple<Args...>>(), false);
    }
  };
  if constexpr (is_function_pointer_v<F>) {
    if (!frame.name.empty()) {
      [&]<class R, class... Params>(R (*)(Params...)) {
        static_assert(sizeof...(Params) == sizeof...(Args), "make_call: wrong number of arguments");
        write(as_parameter<Params>(args)...);
      }(function);
      return frame;
    }
  }
  write(args...);
  return frame;
}

/// A call of `function` with arguments of types `Args...` appended to `out` as cereal writes its
/// CallFrame, where `write_arguments(archive)` writes the arguments as cereal writes values of those
/// types. A map's chunk is encoded this way straight from the inputs: no vector of them and no frame
/// is built and copied first.
template <class... Args, class F, class Write>
  requires is_remote_callable_v<F>
void encode_call(std::string& out, const F& function, Write write_arguments) {
  const CallFrame header = call_header<F, Args...>(function);
  BinaryWriter archive(out);
  archive(header.name, header.entry, header.has_target, header.target);
  const std::size_t size_at = out.size();
  archive(std::uint64_t{0});  // the arguments' length: cereal's size tag of a string, set below
  try {
    write_arguments(archive);
  } catch (...) {
    rethrow_as_serialization_error(type_name<std::tuple<Args...>>(), false);
  }
  const std::uint64_t size = out.size() - size_at - sizeof size;
  std::memcpy(out.data() + size_at, &size, sizeof size);
}

/// The parameter types of a function pointer type, decayed, as a tuple (noexcept or not).
template <class F>
struct parameters_of;
template <class R, class... Params>
struct parameters_of<R (*)(Params...)> {
  using type = std::tuple<std::decay_t<Params>...>;
};
template <class R, class... Params>
struct parameters_of<R (*)(Params...) noexcept> {
  using type = std::tuple<std::decay_t<Params>...>;
};

/// make_call as an executor needs it: the arguments of a function pointer are first converted to its
/// parameter types (a string literal for a std::string, an int for a long), so that what crosses is what
/// the function takes; copies are made only where a type differs.
template <class F, class... Args>
CallFrame make_converted_call(const F& function, const Args&... args) {
  if constexpr (is_function_pointer_v<F>) {
    using Params = typename parameters_of<F>::type;
    static_assert(std::tuple_size_v<Params> == sizeof...(Args), "wrong number of arguments for the function");
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return make_call(function, as_parameter<std::tuple_element_t<I, Params>>(args)...);
    }(std::index_sequence_for<Args...>{});
  } else {
    return make_call(function, args...);
  }
}

/// A callable as an argument of a remote call (the function a pool maps over a chunk of inputs): a
/// function pointer travels as its address, a stateless callable as nothing.
template <class F>
struct RemoteFunction {
  F function{};

  template <class Archive>
  void save(Archive& archive) const {
    if constexpr (is_function_pointer_v<F>) archive(address_of(reinterpret_cast<const void*>(function)));
  }
  template <class Archive>
  void load(Archive& archive) {
    if constexpr (is_function_pointer_v<F>) {
      FunctionAddress address;
      archive(address);
      function = reinterpret_cast<F>(const_cast<void*>(resolve(address)));
    }
  }
};

/// Runs a received call in this process; its result (if any, and if `result` is not null) is appended.
void invoke(const CallFrame& frame, std::string* result);
/// The same with the arguments given apart (read in place from a larger message); frame.arguments is
/// not looked at.
void invoke(const CallFrame& frame, std::string_view arguments, std::string* result);

}  // namespace cohort::detail

#define COHORT_REMOTE_CONCAT_(a, b) a##b
#define COHORT_REMOTE_CONCAT(a, b) COHORT_REMOTE_CONCAT_(a, b)

/// Gives the free (or static member) function `fn` a stable name, its spelling here, so that pools and
/// process actors reach it in workers of another build of the program, where its address differs. Use
/// at namespace scope, once per function, in the builds on both sides.
#define COHORT_REMOTE(fn)                                                                 \
  [[maybe_unused]] static const bool COHORT_REMOTE_CONCAT(cohort_remote_registered_, __COUNTER__) = \
      ::cohort::detail::register_remote(#fn, &fn)
