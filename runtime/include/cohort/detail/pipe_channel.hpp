// The channel under a Pipe: per direction, a byte ring in shared memory that carries the messages, and a
// socket pair that carries only wake-ups and the end of the stream.
//
// A message crosses without a system call when the receiver is already waiting for it (it polls the ring
// for a few microseconds before it sleeps): the sender copies the frame into the ring and publishes it
// with one release store. Only a side that goes to sleep makes the other side write a byte to its socket.
// The sockets are also how an end learns that its peer is closed in every process that held it: the
// kernel counts their references, which a shared counter could not do across fork.
//
// Each socket carries one kind of wake-up (the reader's socket: "data"; the writer's: "space"), so threads
// waiting for different things never take each other's wake-ups.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "cohort/detail/shared_mapping.hpp"
#include "cohort/detail/unique_fd.hpp"

namespace cohort::detail {

/// The shared state of one direction. Indices count bytes since the start and never wrap; a position is
/// `index & (capacity - 1)`.
struct PipeRingControl {
  alignas(64) std::atomic<std::uint64_t> tail{0};  // bytes published by the writer
  std::atomic<std::uint32_t> writers_sleeping{0};
  alignas(64) std::atomic<std::uint64_t> head{0};  // bytes consumed by the reader
  std::atomic<std::uint32_t> readers_present{0};   // receives in progress, spinning or asleep
  std::atomic<std::uint32_t> readers_sleeping{0};
};

/// One end's view of one direction: the ring and this end's socket of the direction's pair.
struct PipeRingEnd {
  PipeRingControl* control = nullptr;
  char* data = nullptr;
  std::uint64_t capacity = 0;  // a power of two, read once when the mapping is attached
  std::uint8_t index = 0;      // which ring of the mapping
  UniqueFd socket;
  bool slept_last_time = false;

  PipeRingEnd() = default;
  PipeRingEnd(PipeRingEnd&& other) noexcept { *this = std::move(other); }
  PipeRingEnd& operator=(PipeRingEnd&& other) noexcept {
    control = std::exchange(other.control, nullptr);
    data = std::exchange(other.data, nullptr);
    capacity = std::exchange(other.capacity, 0);
    index = other.index;
    socket = std::move(other.socket);
    return *this;
  }

  explicit operator bool() const noexcept { return control != nullptr; }
};

/// Bytes per direction. Pages are touched only as data passes through them.
inline constexpr std::uint64_t pipe_ring_capacity = 256 * 1024;

/// A new mapping with `rings` (1 or 2) directions.
std::shared_ptr<SharedMapping> create_pipe_mapping(unsigned rings);

/// This end's view of ring `index` of `mapping`, with its socket. SerializationError when the mapping
/// does not hold such a ring (a corrupt or foreign descriptor).
PipeRingEnd open_pipe_ring(const SharedMapping& mapping, std::uint8_t index, UniqueFd socket);

}  // namespace cohort::detail
