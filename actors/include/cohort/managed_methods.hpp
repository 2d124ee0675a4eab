// The methods of a class that a manager serves by name, so that a program other than the server's (a
// different executable, on another machine) can call them: a function's address means nothing there,
// its name and its parameter types do.
//
//   class Accumulator { public: int add(int k); int total() const; };
//   COHORT_MANAGED_METHODS(Accumulator, &Accumulator::add, &Accumulator::total)
//
// at namespace scope, in a header both programs include. An overloaded method is named with a cast:
// static_cast<int (Accumulator::*)(int)>(&Accumulator::add).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

namespace cohort {

/// Specialized by COHORT_MANAGED_METHODS: `methods` (a tuple of member function pointers) and
/// `spelled` (their source text, from which their names are read).
template <class T>
struct managed_methods;

namespace detail {

template <class T>
concept has_managed_methods = requires {
  std::tuple_size<std::remove_cvref_t<decltype(managed_methods<T>::methods)>>::value;
  { managed_methods<T>::spelled } -> std::convertible_to<std::string_view>;
};

/// The names of the methods listed in `spelled` ("&A::add, static_cast<...>(&A::get)" -> add, get).
std::vector<std::string> managed_method_names(std::string_view spelled);

/// The parameter and result types of a member function pointer.
template <class M>
struct member_signature;

#define COHORT_DETAIL_MEMBER_SIGNATURE(qualifiers)               \
  template <class R, class C, class... P>                        \
  struct member_signature<R (C::*)(P...) qualifiers> {           \
    using result = R;                                            \
    using parameters = std::tuple<std::decay_t<P>...>;           \
  };
COHORT_DETAIL_MEMBER_SIGNATURE()
COHORT_DETAIL_MEMBER_SIGNATURE(const)
COHORT_DETAIL_MEMBER_SIGNATURE(noexcept)
COHORT_DETAIL_MEMBER_SIGNATURE(const noexcept)
COHORT_DETAIL_MEMBER_SIGNATURE(&)
COHORT_DETAIL_MEMBER_SIGNATURE(const&)
#undef COHORT_DETAIL_MEMBER_SIGNATURE

/// The index of `method` among T's managed methods, or -1.
template <class T, class M>
int managed_method_index(const M& method) noexcept {
  int found = -1;
  std::size_t index = 0;
  std::apply(
      [&](const auto&... listed) {
        (
            [&] {
              if constexpr (std::is_same_v<std::remove_cvref_t<decltype(listed)>, M>)
                if (found < 0 && listed == method) found = static_cast<int>(index);
              ++index;
            }(),
            ...);
      },
      managed_methods<T>::methods);
  return found;
}

}  // namespace detail
}  // namespace cohort

/// Declares the methods of `Class` that managers serve by name (see the top of this header).
#define COHORT_MANAGED_METHODS(Class, ...)                               \
  template <>                                                            \
  struct cohort::managed_methods<Class> {                                \
    static constexpr auto methods = std::make_tuple(__VA_ARGS__);        \
    static constexpr std::string_view spelled = #__VA_ARGS__;            \
  };
