// How a callable is called with arguments that were stored for it and are used once: a Process's target
// and arguments, a pool task's decoded arguments, a thread pool's bound call. As std::thread does, each
// stored argument is passed as an rvalue, so a parameter taken by value, as const T& or as T&& accepts
// it, move-only types included (`void worker(cohort::Connection conn)`). Unlike std::thread, a T&
// parameter still works: it gets the stored object itself as an lvalue.
//
// Which arguments go as lvalues is read from the signature where it is known (a function pointer, or a
// class with one non-template operator(), such as a lambda with declared parameters): exactly those
// bound to T& parameters. Otherwise (a generic lambda, an overload set) all go as rvalues if that call
// is valid, else all as lvalues.
#pragma once

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace cohort::detail {

template <class... Params>
struct parameter_list {
  static constexpr std::size_t size = sizeof...(Params);
  using type = std::tuple<Params...>;
};

/// The parameters of F's one call signature, where it has one; `known` is false otherwise.
template <class F>
struct call_signature {
  static constexpr bool known = false;
};
template <class R, class... P>
struct call_signature<R (*)(P...)> : parameter_list<P...> {
  static constexpr bool known = true;
};
template <class R, class... P>
struct call_signature<R (*)(P...) noexcept> : call_signature<R (*)(P...)> {};

template <class M>
struct operator_signature {
  static constexpr bool known = false;
};
#define COHORT_OPERATOR_SIGNATURE(qualifiers)                                   \
  template <class R, class C, class... P>                                       \
  struct operator_signature<R (C::*)(P...) qualifiers> : parameter_list<P...> { \
    static constexpr bool known = true;                                         \
  };
COHORT_OPERATOR_SIGNATURE()
COHORT_OPERATOR_SIGNATURE(const)
COHORT_OPERATOR_SIGNATURE(noexcept)
COHORT_OPERATOR_SIGNATURE(const noexcept)
COHORT_OPERATOR_SIGNATURE(&)
COHORT_OPERATOR_SIGNATURE(const&)
COHORT_OPERATOR_SIGNATURE(& noexcept)
COHORT_OPERATOR_SIGNATURE(const& noexcept)
#undef COHORT_OPERATOR_SIGNATURE

template <class F>
  requires std::is_class_v<F> && requires { &F::operator(); }
struct call_signature<F> : operator_signature<decltype(&F::operator())> {};

/// A parameter that only an lvalue binds to: T&, not const T&.
template <class P>
inline constexpr bool binds_lvalue_only_v = std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>;

template <class F, class... Args>
consteval auto lvalue_arguments() {
  struct Choice {
    bool as_lvalue[sizeof...(Args) + 1] = {};
  } choice;
  using Signature = call_signature<F>;
  if constexpr (Signature::known) {
    if constexpr (Signature::size == sizeof...(Args)) {
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((choice.as_lvalue[I] = binds_lvalue_only_v<std::tuple_element_t<I, typename Signature::type>>), ...);
      }(std::index_sequence_for<Args...>{});
      return choice;
    }
  }
  if constexpr (!std::is_invocable_v<F&, Args&&...>) {
    for (std::size_t i = 0; i < sizeof...(Args); ++i) choice.as_lvalue[i] = true;
  }
  return choice;
}

/// The call of a stored `F` with stored arguments of types `Args...` (decayed types: what is kept).
template <class F, class... Args>
struct stored_call {
  static constexpr auto choice = lvalue_arguments<F, Args...>();
  /// The type the I-th argument is passed as: Args[I]&& or, for a T& parameter, Args[I]&.
  template <std::size_t I>
  using pass_t = std::conditional_t<choice.as_lvalue[I], std::tuple_element_t<I, std::tuple<Args...>>&,
                                    std::tuple_element_t<I, std::tuple<Args...>>&&>;

  template <class Indices = std::index_sequence_for<Args...>>
  struct with;
  template <std::size_t... I>
  struct with<std::index_sequence<I...>> {
    static constexpr bool callable = std::is_invocable_v<F&, pass_t<I>...>;
    using result = typename std::conditional_t<callable, std::invoke_result<F&, pass_t<I>...>,
                                               std::type_identity<void>>::type;
  };

  static constexpr bool callable = with<>::callable;
  /// The call's result type; void when it is not callable (callers static_assert `callable` first).
  using result = typename with<>::result;
};

/// Calls `fn` with `args` (the stored objects, each an lvalue here) passed as stored_call decides.
template <class F, class... Args>
decltype(auto) invoke_stored(F& fn, Args&... args) {
  using Call = stored_call<F, Args...>;
  return [&]<std::size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
    return std::invoke(fn, static_cast<typename Call::template pass_t<I>>(args)...);
  }(std::index_sequence_for<Args...>{});
}

/// The same with the arguments in a tuple.
template <class F, class... Args>
decltype(auto) invoke_stored(F& fn, std::tuple<Args...>& args) {
  return std::apply([&](Args&... values) -> decltype(auto) { return invoke_stored(fn, values...); }, args);
}

/// The result type of a stored call of F with Args, decayed, as a Future holds it.
template <class F, class... Args>
using stored_result_t = std::remove_cvref_t<typename stored_call<std::decay_t<F>, std::decay_t<Args>...>::result>;

}  // namespace cohort::detail
