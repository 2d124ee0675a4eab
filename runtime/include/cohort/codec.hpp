// The serialization codec: every value that crosses a thread-safe queue, a pipe or a process boundary
// travels as one frame, [header | type name | cereal binary payload]. The header carries the payload
// length (bounded by max_message_size) and a hash of the writer's type, so reading a different type
// than was written fails with both names instead of producing garbage.
#pragma once

#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/memory.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "cohort/detail/binary_archive.hpp"
#include "cohort/detail/type_name.hpp"

namespace cohort {

/// The largest payload one frame may carry; a frame announcing more is rejected before any allocation.
/// Default 1 GiB. Applies process-wide.
std::uint64_t max_message_size() noexcept;
void set_max_message_size(std::uint64_t bytes);

namespace detail {

/// Fixed part of every frame, in host byte order (frames never leave the machine that wrote them
/// without a transport that says otherwise).
struct FrameHeader {
  std::uint32_t magic;
  std::uint32_t name_size;
  std::uint64_t type_hash;
  std::uint64_t payload_size;
};
static_assert(sizeof(FrameHeader) == 24);

inline constexpr std::uint32_t frame_magic = 0x31484f43;  // "COH1"
inline constexpr std::uint32_t max_type_name_size = 4096;

/// Appends a header whose payload size end_frame() fills in; returns where the header starts.
std::size_t begin_frame(std::string& out, std::uint64_t type_hash, std::string_view type_name);
/// `bytes_after`: the payload goes on with that many bytes sent right after `out` (send_joined).
void end_frame(std::string& out, std::size_t header_offset, std::size_t bytes_after = 0);

/// Checks magic and sizes of a header read from a stream; returns how many bytes follow it.
std::uint64_t frame_body_size(const FrameHeader& header);

/// Validates a whole frame against the expected type and returns its payload.
std::string_view open_frame(std::string_view frame, std::uint64_t type_hash, std::string_view type_name);

[[noreturn]] void throw_trailing_bytes(std::string_view type_name, std::size_t count);
[[noreturn]] void rethrow_as_serialization_error(std::string_view type_name, bool reading);

}  // namespace detail

/// Appends one frame holding `value` to `out`.
template <class T>
void dump_to(std::string& out, const T& value) {
  const auto header = detail::begin_frame(out, detail::type_hash<T>, detail::type_name<T>());
  try {
    detail::BinaryWriter archive(out);
    archive(value);
  } catch (...) {
    out.resize(header);
    detail::rethrow_as_serialization_error(detail::type_name<T>(), false);
  }
  detail::end_frame(out, header);
}

/// Serializes `value` into a new frame (Python: `pickle.dumps`).
template <class T>
std::string dumps(const T& value) {
  std::string out;
  dump_to(out, value);
  return out;
}

/// Decodes a frame written by dumps<T> (Python: `pickle.loads`). Throws SerializationError naming both
/// types when the frame holds another type, and when it is truncated or corrupt.
template <class T>
T loads(std::string_view frame) {
  static_assert(std::is_default_constructible_v<T>,
                "cohort::loads<T>: T must be default-constructible so cereal can load into it");
  const auto payload = detail::open_frame(frame, detail::type_hash<T>, detail::type_name<T>());
  T value{};
  detail::BinaryReader archive(payload);
  try {
    archive(value);
  } catch (...) {
    detail::rethrow_as_serialization_error(detail::type_name<T>(), true);
  }
  if (archive.remaining() != 0) detail::throw_trailing_bytes(detail::type_name<T>(), archive.remaining());
  return value;
}

}  // namespace cohort
