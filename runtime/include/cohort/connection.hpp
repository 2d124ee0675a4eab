// Pipe and Connection (Python: multiprocessing.Pipe / connection.Connection): a pair of connected ends
// that carry whole messages between processes or threads, as typed values (send<T> / recv<T>, through
// the codec) or raw bytes (send_bytes / recv_bytes), blocking or, in coroutines, awaited.
//
// On the wire every message is [magic "COHM" | 4 reserved bytes | 64-bit length | bytes]; a length
// beyond max_message_size() or a wrong magic closes nothing but throws, and the receive buffer grows
// only as bytes actually arrive, so a corrupt length cannot allocate much.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cohort/codec.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/fd_transfer.hpp"
#include "cohort/detail/unique_fd.hpp"
#include "cohort/task.hpp"

namespace cohort {

class Connection {
 public:
  /// A closed connection.
  Connection() = default;
  /// Takes ownership of a connected stream socket.
  Connection(detail::UniqueFd socket, bool readable, bool writable) noexcept
      : fd_(std::move(socket)), readable_(readable), writable_(writable) {}

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

  void close() noexcept { fd_.reset(); }
  bool closed() const noexcept { return !fd_; }
  bool readable() const noexcept { return readable_; }
  bool writable() const noexcept { return writable_; }
  int fileno() const;

  /// A Connection crosses to a spawn or forkserver child as a Process argument (its socket travels as a
  /// descriptor); it cannot be written into a message.
  template <class Archive>
  void save(Archive& archive) const {
    archive(detail::export_fd(fd_.get(), "Connection"), readable_, writable_);
  }
  template <class Archive>
  void load(Archive& archive) {
    std::uint32_t index = 0;
    archive(index, readable_, writable_);
    fd_ = detail::import_fd(index, "Connection");
  }

 private:
  bool poll_until(detail::Clock::time_point deadline) const;
  void check_readable(const char* what) const;
  void check_writable(const char* what) const;

  detail::UniqueFd fd_;
  bool readable_ = false;
  bool writable_ = false;
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

/// Checks a header of which `received` bytes arrived before the stream ended or it was complete: EOFError
/// for none or part of it, SerializationError for a wrong magic or a size over the limit. Returns the body
/// size.
std::uint64_t message_body_size(const MessageHeader& header, std::size_t received, const char* what);

/// The stream ended after `received` of a body's `size` bytes.
[[noreturn]] void throw_truncated_body(const char* what, std::uint64_t received, std::uint64_t size);

/// How many more body bytes to make room for, having `have` of `size`: the buffer at most doubles per
/// step, so its size follows the bytes that really arrived, not what a (maybe corrupt) header claims.
inline std::size_t message_read_step(std::size_t have, std::uint64_t size) {
  constexpr std::size_t first_step = 64 * 1024;
  const std::uint64_t left = size - have;
  const std::size_t step = have > first_step ? have : first_step;
  return static_cast<std::size_t>(left < step ? left : step);
}

}  // namespace detail

}  // namespace cohort
