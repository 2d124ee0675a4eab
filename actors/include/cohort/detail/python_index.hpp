// Python's indexing of a sequence: a negative index counts from the end; past either end is an
// IndexError, here std::out_of_range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cohort::detail {

/// The position of `index` in a sequence of `size` items; std::out_of_range naming `what` past the ends.
inline std::size_t python_index(std::int64_t index, std::size_t size, const char* what) {
  const auto count = static_cast<std::int64_t>(size);
  const auto at = index < 0 ? index + count : index;
  if (at < 0 || at >= count)
    throw std::out_of_range(std::string(what) + ": index " + std::to_string(index) + " out of range for size " +
                            std::to_string(size));
  return static_cast<std::size_t>(at);
}

}  // namespace cohort::detail
