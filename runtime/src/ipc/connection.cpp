// Connection's blocking side: whole messages through a Pipe's shared rings, sleeping on the ring's socket
// only after a short poll.
#include "cohort/connection.hpp"
#include "cohort/detail/connection_set.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"
#include "ipc/pipe_stream.hpp"

namespace cohort {

namespace detail {

void check_message_size(std::uint64_t size, const char* what) {
  if (size > max_message_size())
    throw SerializationError(
        fmt::format("{}: message of {} bytes exceeds max_message_size() ({} bytes)", what, size, max_message_size()));
}

std::uint64_t message_body_size(const MessageHeader& header, const char* what) {
  if (header.magic != message_magic)
    throw SerializationError(
        fmt::format("{}: not a cohort message (magic {:#010x}); the stream is corrupt", what, header.magic));
  check_message_size(header.size, what);
  return header.size;
}

void throw_truncated_body(const char* what, std::uint64_t received, std::uint64_t size) {
  throw EOFError(fmt::format("{}: the stream ended inside a message ({} of {} bytes)", what, received, size));
}

void write_unframed(Connection& end, std::string_view bytes) {
  end.check_writable("send");
  end.write_stream(bytes, {}, "Connection.send");
}

struct ConnectionAccess {
  static void shut_down(Connection& end) noexcept {
    for (const auto* ring : {&end.in_, &end.out_})
      if (*ring) ::shutdown(ring->socket.get(), SHUT_RDWR);
  }
  static const PipeRingEnd& in(const Connection& end) {
    end.check_readable("recv");
    return end.in_;
  }
  static std::shared_ptr<SharedMapping> mapping(const Connection& end) { return end.mapping_; }
  static void receive(Connection& end, std::string& body) { end.recv_into(body); }
  static const PipeRingEnd& out(const Connection& end) {
    end.check_writable("send");
    return end.out_;
  }
  static void send_joined(Connection& end, std::string_view head, std::string_view tail) {
    end.check_writable("send");
    check_message_size(head.size() + tail.size(), "Connection.send");
    const MessageHeader header{message_magic, 0, head.size() + tail.size()};
    std::string first;
    first.reserve(sizeof header + head.size());
    first.append(reinterpret_cast<const char*>(&header), sizeof header);
    first.append(head);
    end.write_stream(first, tail, "Connection.send");
  }
};

void shut_down(Connection& end) noexcept { ConnectionAccess::shut_down(end); }

bool message_waiting(const Connection& end) { return ring_readable(ConnectionAccess::in(end)) > 0; }

std::uint64_t send_room(const Connection& end) { return ring_writable(ConnectionAccess::out(end)); }

bool receiver_sleeping(const Connection& end) {
  return ConnectionAccess::out(end).control->readers_sleeping.load(std::memory_order_seq_cst) > 0;
}

void send_joined(Connection& end, std::string_view head, std::string_view tail) {
  ConnectionAccess::send_joined(end, head, tail);
}

void receive_into(Connection& end, std::string& body) { ConnectionAccess::receive(end, body); }

ReceiverPresence::ReceiverPresence(const Connection& end)
    : mapping_(ConnectionAccess::mapping(end)), count_(&ConnectionAccess::in(end).control->readers_present) {
  count_->fetch_add(1, std::memory_order_relaxed);
}

void ReceiverPresence::release() noexcept {
  if (count_) count_->fetch_sub(1, std::memory_order_relaxed);
  count_ = nullptr;
  mapping_.reset();
}

void wait_for_any(std::span<const Connection* const> ends, std::span<pollfd> fds, int timeout_ms,
                  std::span<char> peer_closed) {
  std::vector<pollfd> watch;
  watch.reserve(ends.size() + fds.size());
  for (const auto* end : ends) {
    const auto& ring = ConnectionAccess::in(*end);
    ring.control->readers_sleeping.fetch_add(1, std::memory_order_seq_cst);
    watch.push_back(pollfd{.fd = ring.socket.get(), .events = POLLIN, .revents = 0});
  }
  // Pairs with the sender's fence between publishing and looking at readers_sleeping (WaiterCount).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool arrived = false;
  for (const auto* end : ends) arrived = arrived || ring_readable(ConnectionAccess::in(*end)) > 0;
  watch.insert(watch.end(), fds.begin(), fds.end());
  const int ready = arrived ? 0 : ::poll(watch.data(), watch.size(), timeout_ms);
  const int error = errno;
  for (const auto* end : ends) ConnectionAccess::in(*end).control->readers_sleeping.fetch_sub(1, std::memory_order_relaxed);
  if (ready < 0 && error != EINTR) throw Error(fmt::format("waiting on connections: {}", std::strerror(error)));
  for (std::size_t i = 0; i < ends.size(); ++i)
    peer_closed[i] = watch[i].revents != 0 && drain_wakeups(watch[i].fd);
  for (std::size_t i = 0; i < fds.size(); ++i) fds[i].revents = ready > 0 ? watch[ends.size() + i].revents : 0;
}

}  // namespace detail

namespace {

[[noreturn]] void throw_os_error(const char* what) {
  throw Error(fmt::format("{}: {}", what, std::strerror(errno)));
}

/// Unless `ready()` already holds, sleeps on the ring's socket counted in `sleepers` (so that the other
/// side sends a wake-up), then takes the wake-ups that came. True when the other end is closed everywhere.
template <class Ready>
bool sleep_unless(const detail::PipeRingEnd& ring, std::atomic<std::uint32_t>& sleepers, Ready ready,
                  const char* what) {
  {
    detail::WaiterCount sleeping(sleepers);
    if (ready()) return false;
    pollfd watch{.fd = ring.socket.get(), .events = POLLIN, .revents = 0};
    if (::poll(&watch, 1, -1) < 0 && errno != EINTR) throw_os_error(what);
  }
  return detail::drain_wakeups(ring.socket.get());
}

/// Waits until at least `wanted` bytes are readable and returns how many are; fewer only when the other
/// end is closed everywhere. Polls for a few microseconds first: a reply to a request usually comes
/// sooner than a sleep and a wake-up would take.
std::uint64_t wait_readable(detail::PipeRingEnd& ring, std::uint64_t wanted) {
  std::uint64_t readable = detail::ring_readable(ring);
  if (readable >= wanted) return readable;
  const auto enough = [&] { return (readable = detail::ring_readable(ring)) >= wanted; };
  const auto limit = ring.slept_last_time ? std::chrono::microseconds(2) : detail::spin_before_sleep;
  ring.slept_last_time = false;
  // Yielding: the answer may have to come from a process that waits for this CPU (two cores, a
  // manager's client, server and worker: 12 us a queue round trip, against 36 to 90 us spinning).
  if (detail::spin_until(enough, limit, detail::BetweenPolls::yield_cpu)) return readable;
  ring.slept_last_time = true;
  for (;;) {
    const bool closed = sleep_unless(ring, ring.control->readers_sleeping, enough, "Connection.recv");
    if (enough() || closed) return readable;
  }
}

/// Waits until the ring has room. EOFError when the reader's end is closed everywhere.
void wait_writable(const detail::PipeRingEnd& ring, const char* what) {
  const auto room = [&] { return detail::ring_writable(ring) > 0; };
  if (detail::spin_until(room)) return;
  for (;;) {
    if (sleep_unless(ring, ring.control->writers_sleeping, room, what))
      throw EOFError(fmt::format("{}: the other end is closed", what));
    if (room()) return;
  }
}

}  // namespace

void Connection::check_readable(const char* what) const {
  if (!mapping_) throw Error(fmt::format("Connection.{}: the connection is closed", what));
  if (!in_) throw Error(fmt::format("Connection.{}: this end is write-only", what));
}

void Connection::check_writable(const char* what) const {
  if (!mapping_) throw Error(fmt::format("Connection.{}: the connection is closed", what));
  if (!out_) throw Error(fmt::format("Connection.{}: this end is read-only", what));
}

void Connection::close() noexcept {
  in_ = {};
  out_ = {};
  mapping_.reset();
}

int Connection::fileno() const {
  if (!mapping_) throw Error("Connection.fileno: the connection is closed");
  return in_ ? in_.socket.get() : out_.socket.get();
}

void Connection::write_stream(std::string_view first, std::string_view second, const char* what) {
  if (detail::peer_closed(out_)) throw EOFError(fmt::format("{}: the other end is closed", what));
  detail::FrameWriter writer(first, second);
  while (!writer.advance(out_, what)) wait_writable(out_, what);
}

void Connection::send_bytes(std::string_view bytes) {
  check_writable("send");
  detail::check_message_size(bytes.size(), "Connection.send");
  const detail::MessageHeader header{detail::message_magic, 0, bytes.size()};
  write_stream({reinterpret_cast<const char*>(&header), sizeof header}, bytes, "Connection.send");
}

bool Connection::try_send_bytes(std::string_view bytes) {
  constexpr const char* what = "Connection.try_send";
  check_writable("try_send");
  detail::check_message_size(bytes.size(), what);
  if (detail::peer_closed(out_)) throw EOFError(fmt::format("{}: the other end is closed", what));
  if (detail::ring_writable(out_) < sizeof(detail::MessageHeader) + bytes.size()) return false;
  const detail::MessageHeader header{detail::message_magic, 0, bytes.size()};
  detail::FrameWriter writer({reinterpret_cast<const char*>(&header), sizeof header}, bytes);
  // It fits: one advance writes it whole (only this end writes to the ring).
  return writer.advance(out_, what);
}

void Connection::recv_into(std::string& body) {
  check_readable("recv");
  detail::WaiterCount present(in_.control->readers_present);
  detail::FrameReader reader("Connection.recv", body);
  for (;;) {
    const std::uint64_t readable = wait_readable(in_, reader.wanted());
    if (readable < reader.wanted()) reader.end_of_stream(readable);
    if (reader.advance(in_, readable)) return;
  }
}

std::string Connection::recv_bytes(std::optional<std::size_t> max_length) {
  std::string body;
  recv_into(body);
  if (max_length && body.size() > *max_length)
    throw Error(fmt::format("Connection.recv_bytes: message of {} bytes is longer than max_length {}", body.size(),
                            *max_length));
  return body;
}

bool Connection::poll_until(detail::Clock::time_point deadline) const {
  check_readable("poll");
  if (detail::ring_readable(in_) > 0) return true;
  detail::WaiterCount present(in_.control->readers_present);
  for (;;) {
    int ready = 0;
    {
      detail::WaiterCount sleeping(in_.control->readers_sleeping);
      if (detail::ring_readable(in_) > 0) return true;
      const auto left = std::max(deadline - detail::Clock::now(), detail::Clock::duration::zero());
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      pollfd watch{.fd = in_.socket.get(), .events = POLLIN, .revents = 0};
      ready = ::poll(&watch, 1, static_cast<int>(std::min<long long>(ms, 60'000)));
      if (ready < 0 && errno != EINTR) throw_os_error("Connection.poll");
    }
    // A message, or the end of the stream: recv will not block either way.
    if (ready > 0 && (detail::drain_wakeups(in_.socket.get()) || detail::ring_readable(in_) > 0)) return true;
    if (detail::Clock::now() >= deadline) return detail::ring_readable(in_) > 0;
  }
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  // One socket pair per direction: [0] stays with the writer, [1] with the reader.
  auto socket_pair = [] {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_os_error("Pipe");
    return std::pair{detail::UniqueFd(fds[0]), detail::UniqueFd(fds[1])};
  };
  auto mapping = detail::create_pipe_mapping(duplex ? 2 : 1);
  auto [to_first_writer, to_first_reader] = socket_pair();
  auto first_in = detail::open_pipe_ring(*mapping, 0, std::move(to_first_reader));
  auto second_out = detail::open_pipe_ring(*mapping, 0, std::move(to_first_writer));
  if (!duplex) return {Connection(mapping, std::move(first_in), {}), Connection(mapping, {}, std::move(second_out))};
  auto [to_second_writer, to_second_reader] = socket_pair();
  auto second_in = detail::open_pipe_ring(*mapping, 1, std::move(to_second_reader));
  auto first_out = detail::open_pipe_ring(*mapping, 1, std::move(to_second_writer));
  return {Connection(mapping, std::move(first_in), std::move(first_out)),
          Connection(mapping, std::move(second_in), std::move(second_out))};
}

}  // namespace cohort
