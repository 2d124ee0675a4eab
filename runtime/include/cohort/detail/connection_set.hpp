// Serving many Connections from one thread, as a process pool's I/O thread serves its workers: look at
// each end without blocking, and sleep until any of them (or another descriptor) has something.
#pragma once

#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "cohort/connection.hpp"

namespace cohort::detail {

/// Whether bytes have arrived on `end`: a receive will not wait for its first byte.
bool message_waiting(const Connection& end);

/// Bytes `end` can send at once: a message of n bytes that fits in send_room - sizeof(MessageHeader)
/// is sent without waiting for the receiver.
std::uint64_t send_room(const Connection& end);

/// Whether the receiver at the other end of `end` sleeps waiting for a message: one sent now wakes it.
bool receiver_sleeping(const Connection& end);

/// Sends one message whose bytes are `head` followed by `tail`, as send_bytes would send them joined: a
/// large `tail` goes into the ring without being copied next to `head` first.
void send_joined(Connection& end, std::string_view head, std::string_view tail);

/// Receives one message into `body`, reusing its capacity: a thread that receives large messages again
/// and again keeps one buffer instead of having the allocator map and unmap fresh pages each time.
void receive_into(Connection& end, std::string& body);

/// Counts a receiver on `end` for as long as it lives. A sender checks with the kernel whether its peer
/// is still open only when no receiver is counted, so a thread that receives on `end` again and again
/// spares every send of its peer that system call.
class ReceiverPresence {
 public:
  explicit ReceiverPresence(const Connection& end);
  ~ReceiverPresence() { release(); }
  ReceiverPresence(ReceiverPresence&& other) noexcept
      : mapping_(std::move(other.mapping_)), count_(std::exchange(other.count_, nullptr)) {}
  ReceiverPresence& operator=(ReceiverPresence&& other) noexcept {
    if (this != &other) {
      release();
      mapping_ = std::move(other.mapping_);
      count_ = std::exchange(other.count_, nullptr);
    }
    return *this;
  }
  ReceiverPresence(const ReceiverPresence&) = delete;
  ReceiverPresence& operator=(const ReceiverPresence&) = delete;

 private:
  void release() noexcept;

  std::shared_ptr<SharedMapping> mapping_;  // keeps the counter mapped, whatever happens to the Connection
  std::atomic<std::uint32_t>* count_ = nullptr;
};

/// Sleeps until bytes arrive on one of `ends` (or its peer is closed everywhere), one of `fds` becomes
/// readable (its revents are set), or `timeout_ms` passes (-1: no limit). It announces itself to every
/// end's sender before it looks at the rings a last time, so no wake-up is lost. On return
/// `peer_closed[i]` tells whether the other end of `ends[i]` is closed in every process.
void wait_for_any(std::span<const Connection* const> ends, std::span<pollfd> fds, int timeout_ms,
                  std::span<char> peer_closed);

}  // namespace cohort::detail
