// The steps of moving message bytes through a Pipe's shared rings (detail/pipe_channel.hpp), shared by
// Connection's blocking side and its coroutine side, which differ only in how they wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "cohort/connection.hpp"
#include "cohort/detail/pipe_channel.hpp"

namespace cohort::detail {

/// Bytes the reader can take now. SerializationError when the shared indices are impossible (something
/// overwrote the shared memory): the stream cannot be trusted past that point.
std::uint64_t ring_readable(const PipeRingEnd& ring);
/// Bytes the writer can add now.
std::uint64_t ring_writable(const PipeRingEnd& ring);

/// Copies `size` readable bytes out of the ring, frees their space and wakes a writer that sleeps for it.
void ring_read(const PipeRingEnd& ring, void* out, std::uint64_t size);
/// The same, appending the bytes to `out`.
void ring_append(const PipeRingEnd& ring, std::string& out, std::uint64_t size);

/// Takes the wake-up bytes waiting on `socket`; true when the other end is closed in every process.
bool drain_wakeups(int socket);

/// Whether the other end of `ring` is closed in every process. Asks the kernel only when no receive is
/// in progress there (a receiving peer is evidently open), so a reply to a waiting peer costs nothing.
bool peer_closed(const PipeRingEnd& ring);

/// Counts this thread among those waiting on a shared counter (readers_present, readers_sleeping,
/// writers_sleeping) for as long as it lives. The full fence after the increment pairs with the fence
/// between a publication and the other side's look at the counter: either that side sees the count and
/// wakes this one, or this one sees its publication when it checks again before sleeping.
class WaiterCount {
 public:
  explicit WaiterCount(std::atomic<std::uint32_t>& count) noexcept : count_(count) {
    count_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  ~WaiterCount() { count_.fetch_sub(1, std::memory_order_relaxed); }
  WaiterCount(const WaiterCount&) = delete;
  WaiterCount& operator=(const WaiterCount&) = delete;

 private:
  std::atomic<std::uint32_t>& count_;
};

/// Sends a message header and body (or any two pieces of bytes) in as many steps as the ring's free space
/// requires.
class FrameWriter {
 public:
  FrameWriter(std::string_view first, std::string_view second) noexcept : parts_{first, second} {}
  /// Writes what fits, publishes it and wakes a sleeping reader. True once everything is written.
  /// EOFError when the reader's end is closed everywhere.
  bool advance(const PipeRingEnd& ring, const char* what);

 private:
  std::string_view parts_[2];
};

/// Receives one message in steps, as its bytes become readable.
class FrameReader {
 public:
  explicit FrameReader(const char* what) noexcept : what_(what) {}
  /// Receives into `body` (emptied first, its capacity kept) instead of a string of its own.
  FrameReader(const char* what, std::string& body) noexcept : what_(what), body_(&body) { body.clear(); }
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;
  /// How many readable bytes `advance` needs to make progress: the whole header first, then any.
  std::uint64_t wanted() const noexcept { return header_done_ ? 1 : sizeof(MessageHeader); }
  /// Takes what it can of `readable` bytes. True once the message is complete.
  bool advance(const PipeRingEnd& ring, std::uint64_t readable);
  /// The stream ended with only `readable` (< wanted()) bytes left: EOFError, saying where it ended.
  [[noreturn]] void end_of_stream(std::uint64_t readable) const;
  std::string take() noexcept { return std::move(*body_); }

 private:
  const char* what_;
  bool header_done_ = false;
  MessageHeader header_{};
  std::uint64_t size_ = 0;
  std::string own_;
  std::string* body_ = &own_;
};

}  // namespace cohort::detail
