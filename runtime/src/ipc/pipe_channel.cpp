// A Pipe's shared rings: their layout in the mapping, and the non-blocking steps of writing and reading
// message bytes through them.
#include "cohort/detail/pipe_channel.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "cohort/error.hpp"
#include "ipc/pipe_stream.hpp"

namespace cohort::detail {

namespace {

/// At the start of the mapping, then one PipeRingControl per ring; the rings' bytes start at data_offset.
struct PipeMappingHeader {
  std::uint32_t magic;
  std::uint32_t rings;
  std::uint64_t capacity;
};
constexpr std::uint32_t pipe_mapping_magic = 0x50484f43;  // "COHP"
constexpr std::size_t controls_offset = 64;
constexpr std::size_t data_offset = 4096;
static_assert(controls_offset + 2 * sizeof(PipeRingControl) <= data_offset);

char* base(const SharedMapping& mapping) { return static_cast<char*>(mapping.data()); }

[[noreturn]] void throw_corrupt() {
  throw SerializationError("Connection: the pipe's shared memory holds impossible positions; the stream is corrupt");
}

/// Sends one wake-up byte. False when the other end is closed everywhere. A full socket buffer means
/// wake-ups are already waiting to be read, so that one is not needed.
bool send_wakeup(int socket) {
  for (;;) {
    const char byte = 1;
    if (::send(socket, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) return true;
    if (errno == EINTR) continue;
    return errno != EPIPE && errno != ECONNRESET;
  }
}

}  // namespace

std::shared_ptr<SharedMapping> create_pipe_mapping(unsigned rings) {
  auto mapping = SharedMapping::create(data_offset + rings * pipe_ring_capacity, "cohort-pipe");
  new (base(*mapping)) PipeMappingHeader{pipe_mapping_magic, rings, pipe_ring_capacity};
  for (unsigned i = 0; i < rings; ++i) new (base(*mapping) + controls_offset + i * sizeof(PipeRingControl)) PipeRingControl;
  return mapping;
}

PipeRingEnd open_pipe_ring(const SharedMapping& mapping, std::uint8_t index, UniqueFd socket) {
  PipeMappingHeader header{};
  if (mapping.size() >= sizeof header) std::memcpy(&header, base(mapping), sizeof header);
  const std::uint64_t capacity = header.capacity;
  const bool valid = header.magic == pipe_mapping_magic && header.rings <= 2 && index < header.rings &&
                     capacity > 0 && (capacity & (capacity - 1)) == 0 &&
                     capacity <= (mapping.size() - data_offset) / header.rings;
  if (!valid || !socket) throw SerializationError("Connection: the received descriptors are not a cohort pipe");
  PipeRingEnd ring;
  ring.control = reinterpret_cast<PipeRingControl*>(base(mapping) + controls_offset + index * sizeof(PipeRingControl));
  ring.data = base(mapping) + data_offset + index * capacity;
  ring.capacity = capacity;
  ring.index = index;
  ring.socket = std::move(socket);
  return ring;
}

std::uint64_t ring_readable(const PipeRingEnd& ring) {
  const std::uint64_t tail = ring.control->tail.load(std::memory_order_acquire);
  const std::uint64_t head = ring.control->head.load(std::memory_order_relaxed);
  if (tail - head > ring.capacity) throw_corrupt();
  return tail - head;
}

std::uint64_t ring_writable(const PipeRingEnd& ring) {
  const std::uint64_t tail = ring.control->tail.load(std::memory_order_relaxed);
  const std::uint64_t head = ring.control->head.load(std::memory_order_acquire);
  if (tail - head > ring.capacity) throw_corrupt();
  return ring.capacity - (tail - head);
}

namespace {

/// Hands `size` bytes from the reading position to `take(pointer, count)` (twice when they wrap), then
/// frees them and wakes a writer that sleeps for room.
template <class Take>
void ring_consume(const PipeRingEnd& ring, std::uint64_t size, Take take) {
  auto& control = *ring.control;
  const std::uint64_t head = control.head.load(std::memory_order_relaxed);
  const std::uint64_t at = head & (ring.capacity - 1);
  const std::uint64_t first = std::min(size, ring.capacity - at);
  take(ring.data + at, first);
  if (size > first) take(ring.data, size - first);
  control.head.store(head + size, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A writer that is gone needs no wake-up: nothing to report.
  if (control.writers_sleeping.load(std::memory_order_relaxed) > 0) (void)send_wakeup(ring.socket.get());
}

}  // namespace

void ring_read(const PipeRingEnd& ring, void* out, std::uint64_t size) {
  auto* to = static_cast<char*>(out);
  ring_consume(ring, size, [&](const char* from, std::uint64_t count) {
    std::memcpy(to, from, count);
    to += count;
  });
}

void ring_append(const PipeRingEnd& ring, std::string& out, std::uint64_t size) {
  ring_consume(ring, size, [&](const char* from, std::uint64_t count) { out.append(from, count); });
}

bool drain_wakeups(int socket) {
  char bytes[256];
  for (;;) {
    const ssize_t n = ::recv(socket, bytes, sizeof bytes, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      return errno == ECONNRESET;
    }
  }
}

bool peer_closed(const PipeRingEnd& ring) {
  if (ring.control->readers_present.load(std::memory_order_relaxed) > 0) return false;
  pollfd watch{.fd = ring.socket.get(), .events = POLLIN, .revents = 0};
  return ::poll(&watch, 1, 0) > 0 && (watch.revents & (POLLHUP | POLLERR)) != 0;
}

bool FrameWriter::advance(const PipeRingEnd& ring, const char* what) {
  auto& control = *ring.control;
  const std::uint64_t tail = control.tail.load(std::memory_order_relaxed);
  std::uint64_t room = ring_writable(ring);
  std::uint64_t written = 0;
  for (auto& part : parts_) {
    while (!part.empty() && room > 0) {
      const std::uint64_t at = (tail + written) & (ring.capacity - 1);
      const std::uint64_t n = std::min<std::uint64_t>({part.size(), room, ring.capacity - at});
      std::memcpy(ring.data + at, part.data(), n);
      part.remove_prefix(n);
      room -= n;
      written += n;
    }
  }
  if (written > 0) {
    control.tail.store(tail + written, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (control.readers_sleeping.load(std::memory_order_relaxed) > 0 && !send_wakeup(ring.socket.get()))
      throw EOFError(fmt::format("{}: the other end is closed", what));
  }
  return parts_[0].empty() && parts_[1].empty();
}

bool FrameReader::advance(const PipeRingEnd& ring, std::uint64_t readable) {
  if (!header_done_) {
    if (readable < sizeof header_) return false;
    ring_read(ring, &header_, sizeof header_);
    readable -= sizeof header_;
    size_ = message_body_size(header_, what_);
    header_done_ = true;
    // Room for what the ring can hold at once; more only as it arrives, whatever the header claims.
    body_->reserve(static_cast<std::size_t>(std::min(size_, ring.capacity)));
  }
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(readable, size_ - body_->size()));
  if (n > 0) ring_append(ring, *body_, n);  // appended as is: no zeroing of the room first
  return body_->size() == size_;
}

void FrameReader::end_of_stream(std::uint64_t readable) const {
  if (header_done_) throw_truncated_body(what_, body_->size() + readable, size_);
  if (readable == 0) throw EOFError(fmt::format("{}: the other end is closed", what_));
  throw EOFError(fmt::format("{}: the stream ended inside a message header ({} of {} bytes)", what_, readable,
                             sizeof header_));
}

}  // namespace cohort::detail
