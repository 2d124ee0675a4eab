// Framing and error reporting of the codec: everything that does not depend on the value's type.
#include "cohort/codec.hpp"

#include <atomic>
#include <cstring>
#include <exception>
#include <string>

#include <fmt/format.h>

namespace cohort {
namespace {

std::atomic<std::uint64_t> max_size{std::uint64_t{1} << 30};

}  // namespace

std::uint64_t max_message_size() noexcept { return max_size.load(std::memory_order_relaxed); }

void set_max_message_size(std::uint64_t bytes) {
  if (bytes == 0) throw std::invalid_argument("set_max_message_size: the limit must be positive");
  max_size.store(bytes, std::memory_order_relaxed);
}

namespace detail {

void BinaryReader::throw_truncated(std::size_t wanted) const {
  throw SerializationError(
      fmt::format("truncated payload: needed {} more bytes, {} remain", wanted, in_.size()));
}

void BinaryReader::throw_bad_length(std::uint64_t count) const {
  throw SerializationError(
      fmt::format("corrupt payload: a container claims {} elements but only {} bytes remain", count, in_.size()));
}

std::size_t begin_frame(std::string& out, std::uint64_t type_hash, std::string_view type_name) {
  const auto offset = out.size();
  FrameHeader header{frame_magic, static_cast<std::uint32_t>(type_name.size()), type_hash, 0};
  out.append(reinterpret_cast<const char*>(&header), sizeof header);
  out.append(type_name);
  return offset;
}

void end_frame(std::string& out, std::size_t header_offset, std::size_t bytes_after) {
  FrameHeader header;
  std::memcpy(&header, out.data() + header_offset, sizeof header);
  const auto payload = out.size() - header_offset - sizeof header - header.name_size + bytes_after;
  if (payload > max_message_size()) {
    out.resize(header_offset);
    throw SerializationError(fmt::format("message of {} bytes exceeds max_message_size ({} bytes)", payload,
                                         max_message_size()));
  }
  header.payload_size = payload;
  std::memcpy(out.data() + header_offset, &header, sizeof header);
}

std::uint64_t frame_body_size(const FrameHeader& header) {
  if (header.magic != frame_magic)
    throw SerializationError(fmt::format("not a cohort frame (magic {:#010x})", header.magic));
  if (header.name_size > max_type_name_size)
    throw SerializationError(fmt::format("corrupt frame: type name of {} bytes", header.name_size));
  if (header.payload_size > max_message_size())
    throw SerializationError(fmt::format("frame announces {} bytes, above max_message_size ({} bytes)",
                                         header.payload_size, max_message_size()));
  return header.name_size + header.payload_size;
}

std::string_view open_frame(std::string_view frame, std::uint64_t type_hash, std::string_view type_name) {
  if (frame.size() < sizeof(FrameHeader))
    throw SerializationError(fmt::format("reading {}: truncated frame of {} bytes", type_name, frame.size()));
  FrameHeader header;
  std::memcpy(&header, frame.data(), sizeof header);
  const auto body = frame_body_size(header);
  if (frame.size() - sizeof header != body)
    throw SerializationError(fmt::format("reading {}: frame holds {} bytes after its header, expected {}",
                                         type_name, frame.size() - sizeof header, body));
  const auto written_name = frame.substr(sizeof header, header.name_size);
  if (header.type_hash != type_hash || written_name != type_name)
    throw SerializationError(fmt::format("type mismatch: expected {}, got {}", type_name, written_name));
  return frame.substr(sizeof header + header.name_size);
}

void throw_trailing_bytes(std::string_view type_name, std::size_t count) {
  throw SerializationError(fmt::format("reading {}: {} bytes left over after the value", type_name, count));
}

void rethrow_as_serialization_error(std::string_view type_name, bool reading) {
  try {
    throw;
  } catch (const SerializationError& e) {
    throw SerializationError(fmt::format("{} {}: {}", reading ? "reading" : "writing", type_name, e.what()));
  } catch (const std::exception& e) {
    throw SerializationError(fmt::format("{} {}: {}", reading ? "reading" : "writing", type_name, e.what()));
  }
}

}  // namespace detail
}  // namespace cohort
