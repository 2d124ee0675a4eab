// Compile-time type names and their hashes: the type tag that every codec frame carries.
#pragma once

#include <cstdint>
#include <string_view>

namespace cohort::detail {

template <class T>
constexpr std::string_view type_name() noexcept {
#if defined(__clang__)
  constexpr std::string_view signature = __PRETTY_FUNCTION__;
  constexpr std::string_view prefix = "[T = ";
  constexpr char terminator = ']';
#elif defined(__GNUC__)
  constexpr std::string_view signature = __PRETTY_FUNCTION__;
  constexpr std::string_view prefix = "[with T = ";
  constexpr char terminator = ';';
#else
#error "cohort needs GCC or Clang to name types"
#endif
  constexpr auto start = signature.find(prefix) + prefix.size();
  constexpr auto semicolon = signature.find(terminator, start);
  constexpr auto end = semicolon == std::string_view::npos ? signature.rfind(']') : semicolon;
  return signature.substr(start, end - start);
}

/// 64-bit FNV-1a: stable across builds of the same compiler, cheap to compute at compile time.
constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t hash = 14695981039346656037ull;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

template <class T>
inline constexpr std::uint64_t type_hash = fnv1a(type_name<T>());

}  // namespace cohort::detail
