// Pipe and Connection (Python: multiprocessing.Pipe / connection.Connection): a pair of connected ends
// that carry whole messages between processes or threads, as typed values (send<T> / recv<T>, through
// the codec) or raw bytes (send_bytes / recv_bytes), blocking or, in coroutines, awaited.
//
// Messages travel through shared memory (detail/pipe_channel.hpp); a receiver that is already waiting
// gets one without a system call on either side. In the stream every message is [magic "COHM" | 4
// reserved bytes | 64-bit length | bytes]; a length beyond max_message_size() or a wrong magic throws,
// and the receive buffer grows only as bytes actually arrive, so a corrupt length cannot allocate much.
//
// As in Python, one end is meant to be used by one thread (or one process) at a time for each direction:
// two senders on the same end at once interleave their bytes, which the receiver reports as a corrupt
// stream. fileno() is the descriptor an end sleeps on; it becomes readable only for a receiver that
// sleeps, so wait with poll(), not with select() on fileno().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/pipe_channel.hpp"
#include "cohort/detail/shared_mapping.hpp"
#include "cohort/task.hpp"

namespace cohort {

class Connection;

namespace detail {
/// Writes `bytes` into the stream of `end` as they are, without a message header: how tests forge
/// corrupt and truncated messages.
void write_unframed(Connection& end, std::string_view bytes);
/// Shuts down the sockets of `end`, from any thread and without closing it: a receive or send waiting on
/// it, here or in another thread, ends with EOFError, and the other end sees this one closed (in every
/// process that holds a copy: it is the socket that is shut down).
void shut_down(Connection& end) noexcept;
/// What detail/connection_set.hpp needs of an end's rings.
struct ConnectionAccess;
}  // namespace detail

class Connection {
 public:
  /// A closed connection.
  Connection() = default;
  /// An end over `mapping` that receives through `in` and sends through `out` (either may be absent).
  Connection(std::shared_ptr<detail::SharedMapping> mapping, detail::PipeRingEnd in, detail::PipeRingEnd out) noexcept
      : mapping_(std::move(mapping)), in_(std::move(in)), out_(std::move(out)) {}

  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;

  /// Sends one value; the receiver must recv<T> the same type (else SerializationError).
  template <class T>
  void send(const T& value) {
    send_bytes(dumps(value));
  }
  /// Receives one value sent with send<T>. EOFError when the other end is closed and nothing is left.
  template <class T>
  T recv() {
    return loads<T>(recv_bytes());
  }

  void send_bytes(std::string_view bytes);
  /// send_bytes if the pipe has room for the whole message now (then true); else sends nothing and
  /// returns false at once. EOFError when the other end is closed. For a sender that must not wait
  /// (an event loop) and queues what does not fit.
  bool try_send_bytes(std::string_view bytes);
  /// One whole message. `max_length`: a longer message throws Error (and is consumed), as in Python.
  std::string recv_bytes(std::optional<std::size_t> max_length = std::nullopt);

  /// Whether a message (or the end of the stream) can be read without blocking, waiting up to `timeout`.
  template <class Rep = long, class Period = std::ratio<1>>
  bool poll(std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(0)) const {
    return poll_until(detail::deadline_after(timeout));
  }

  /// The same as send / recv, without blocking the event loop.
  template <class T>
  task<void> async_send(T value) {
    return async_send_bytes(dumps(value));
  }
  template <class T>
  task<T> async_recv() {
    co_return loads<T>(co_await async_recv_bytes());
  }
  task<void> async_send_bytes(std::string bytes);
  task<std::string> async_recv_bytes();

  void close() noexcept;
  bool closed() const noexcept { return !mapping_; }
  bool readable() const noexcept { return static_cast<bool>(in_); }
  bool writable() const noexcept { return static_cast<bool>(out_); }
  /// The descriptor a receive sleeps on (a sending-only end: the one a send sleeps on).
  int fileno() const;

  /// A Connection crosses to a spawn or forkserver child as a Process argument (its shared memory and
  /// sockets travel as descriptors); it cannot be written into a message.
  template <class Archive>
  void save(Archive& archive) const {
    detail::save_mapping(archive, mapping_, "Connection");
    save_ring(archive, in_);
    save_ring(archive, out_);
  }
  template <class Archive>
  void load(Archive& archive) {
    auto mapping = detail::load_mapping(archive, 1, "Connection");
    auto in = load_ring(archive, *mapping);
    auto out = load_ring(archive, *mapping);
    *this = Connection(std::move(mapping), std::move(in), std::move(out));
  }

 private:
  friend void detail::write_unframed(Connection&, std::string_view);
  friend struct detail::ConnectionAccess;

  template <class Archive>
  static void save_ring(Archive& archive, const detail::PipeRingEnd& ring) {
    archive(static_cast<bool>(ring));
    if (ring) archive(ring.index, detail::export_fd(ring.socket.get(), "Connection"));
  }
  template <class Archive>
  static detail::PipeRingEnd load_ring(Archive& archive, const detail::SharedMapping& mapping) {
    bool present = false;
    archive(present);
    if (!present) return {};
    std::uint8_t index = 0;
    std::uint32_t socket = 0;
    archive(index, socket);
    return detail::open_pipe_ring(mapping, index, detail::import_fd(socket, "Connection"));
  }

  bool poll_until(detail::Clock::time_point deadline) const;
  /// recv_bytes into `body`, whose capacity is reused.
  void recv_into(std::string& body);
  void check_readable(const char* what) const;
  void check_writable(const char* what) const;
  void write_stream(std::string_view first, std::string_view second, const char* what);

  std::shared_ptr<detail::SharedMapping> mapping_;
  detail::PipeRingEnd in_;
  detail::PipeRingEnd out_;
};

/// Two connected ends. duplex: both send and receive. Otherwise the first only receives and the
/// second only sends, as in Python's `r, w = Pipe(False)`.
std::pair<Connection, Connection> Pipe(bool duplex = true);

namespace detail {

struct MessageHeader {
  std::uint32_t magic;
  std::uint32_t reserved;
  std::uint64_t size;
};
static_assert(sizeof(MessageHeader) == 16);
inline constexpr std::uint32_t message_magic = 0x4d484f43;  // "COHM"

/// Throws SerializationError if a message body of `size` bytes may not be sent. `what`: the calling
/// operation, for the message ("Connection.send").
void check_message_size(std::uint64_t size, const char* what);

/// Checks a received header: SerializationError for a wrong magic or a size over the limit. Returns the
/// body size.
std::uint64_t message_body_size(const MessageHeader& header, const char* what);

/// The stream ended after `received` of a body's `size` bytes.
[[noreturn]] void throw_truncated_body(const char* what, std::uint64_t received, std::uint64_t size);

}  // namespace detail

}  // namespace cohort
