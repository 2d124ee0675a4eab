// The non-template parts of Value and Array: creating their shared blocks and checking received ones.
#include "cohort/shared_value.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace cohort::detail {

std::shared_ptr<SharedMapping> create_shared_block(std::size_t bytes, bool with_lock, const char* what) {
  auto mapping = SharedMapping::create(bytes, what);
  if (with_lock) new (mapping->data()) LockState;
  return mapping;
}

void check_shared_block(const SharedMapping& mapping, std::size_t bytes, const char* what) {
  if (mapping.size() < bytes)
    throw SerializationError(
        fmt::format("{}: received shared memory of {} bytes, expected at least {}", what, mapping.size(), bytes));
}

void throw_no_lock(const char* what) { throw Error(fmt::format("{}: this object was created without a lock", what)); }

void throw_index(const char* what, std::size_t index, std::size_t size) {
  throw std::out_of_range(fmt::format("{}: index {} is out of range for an Array of {}", what, index, size));
}

std::size_t array_size_of(const SharedMapping& mapping, std::size_t header_offset, std::size_t data_offset,
                          std::size_t element_size, const char* what) {
  check_shared_block(mapping, data_offset, what);
  const auto* header = reinterpret_cast<const ArrayHeader*>(static_cast<const char*>(mapping.data()) + header_offset);
  if (header->element_size != element_size)
    throw SerializationError(fmt::format("{}: received an Array of {}-byte elements where {}-byte ones were expected",
                                         what, header->element_size, element_size));
  if (header->size > (mapping.size() - data_offset) / element_size)
    throw SerializationError(fmt::format("{}: received an Array of {} elements in shared memory of {} bytes", what,
                                         header->size, mapping.size()));
  return static_cast<std::size_t>(header->size);
}

}  // namespace cohort::detail
