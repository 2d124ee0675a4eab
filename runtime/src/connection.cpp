// Connection's blocking side: whole messages over a stream socket.
#include "cohort/connection.hpp"

#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cohort/detail/spin_wait.hpp"
#include "cohort/error.hpp"

namespace cohort {

namespace detail {

void check_message_size(std::uint64_t size, const char* what) {
  if (size > max_message_size())
    throw SerializationError(
        fmt::format("{}: message of {} bytes exceeds max_message_size() ({} bytes)", what, size, max_message_size()));
}

std::uint64_t message_body_size(const MessageHeader& header, std::size_t received, const char* what) {
  if (received == 0) throw EOFError(fmt::format("{}: the other end is closed", what));
  if (received < sizeof header)
    throw EOFError(
        fmt::format("{}: the stream ended inside a message header ({} of {} bytes)", what, received, sizeof header));
  if (header.magic != message_magic)
    throw SerializationError(
        fmt::format("{}: not a cohort message (magic {:#010x}); the stream is corrupt", what, header.magic));
  check_message_size(header.size, what);
  return header.size;
}

void throw_truncated_body(const char* what, std::uint64_t received, std::uint64_t size) {
  throw EOFError(fmt::format("{}: the stream ended inside a message ({} of {} bytes)", what, received, size));
}

}  // namespace detail

namespace {

[[noreturn]] void throw_os_error(const char* what) {
  throw Error(fmt::format("{}: {}", what, std::strerror(errno)));
}

/// Reads exactly `size` bytes unless the stream ends first; returns how many were read. `spin_first`:
/// poll without blocking for a short while before sleeping in recv, so that a reply microseconds away (a
/// peer answering a request) costs neither side a sleep and a wake-up.
std::size_t read_full(int fd, char* data, std::size_t size, bool spin_first = false) {
  std::size_t done = 0;
  if (spin_first) {
    ssize_t n = -1;
    int polls = 0;
    detail::spin_until([&] {
      n = ::recv(fd, data, size, MSG_DONTWAIT);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return true;
      // Past the first few microseconds, and on a busy machine, the peer may be waiting for this CPU.
      if (++polls % 8 == 0) ::sched_yield();
      return false;
    });
    if (n == 0) return 0;
    if (n > 0) done = static_cast<std::size_t>(n);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) throw_os_error("Connection.recv");
  }
  while (done < size) {
    const ssize_t n = ::recv(fd, data + done, size - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n == 0) {
      return done;
    } else if (errno != EINTR) {
      throw_os_error("Connection.recv");
    }
  }
  return done;
}

}  // namespace

void Connection::check_readable(const char* what) const {
  if (!fd_) throw Error(fmt::format("Connection.{}: the connection is closed", what));
  if (!readable_) throw Error(fmt::format("Connection.{}: this end is write-only", what));
}

void Connection::check_writable(const char* what) const {
  if (!fd_) throw Error(fmt::format("Connection.{}: the connection is closed", what));
  if (!writable_) throw Error(fmt::format("Connection.{}: this end is read-only", what));
}

int Connection::fileno() const {
  if (!fd_) throw Error("Connection.fileno: the connection is closed");
  return fd_.get();
}

void Connection::send_bytes(std::string_view bytes) {
  check_writable("send");
  detail::check_message_size(bytes.size(), "Connection.send");
  const detail::MessageHeader header{detail::message_magic, 0, bytes.size()};
  iovec parts[2] = {{const_cast<detail::MessageHeader*>(&header), sizeof header},
                    {const_cast<char*>(bytes.data()), bytes.size()}};
  iovec* next = parts;
  int count = 2;
  while (count > 0) {
    msghdr message{};
    message.msg_iov = next;
    message.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t n = ::sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) throw EOFError("Connection.send: the other end is closed");
      throw_os_error("Connection.send");
    }
    auto left = static_cast<std::size_t>(n);
    while (count > 0 && left >= next->iov_len) {
      left -= next->iov_len;
      ++next;
      --count;
    }
    if (count > 0) {
      next->iov_base = static_cast<char*>(next->iov_base) + left;
      next->iov_len -= left;
    }
  }
}

std::string Connection::recv_bytes(std::optional<std::size_t> max_length) {
  check_readable("recv");
  detail::MessageHeader header{};
  const std::size_t got = read_full(fd_.get(), reinterpret_cast<char*>(&header), sizeof header, true);
  const std::uint64_t size = detail::message_body_size(header, got, "Connection.recv");
  std::string body;
  while (body.size() < size) {
    const std::size_t before = body.size();
    const std::size_t want = detail::message_read_step(before, size);
    body.resize(before + want);
    const std::size_t n = read_full(fd_.get(), body.data() + before, want);
    if (n < want) detail::throw_truncated_body("Connection.recv", before + n, size);
  }
  if (max_length && body.size() > *max_length)
    throw Error(fmt::format("Connection.recv_bytes: message of {} bytes is longer than max_length {}", body.size(),
                            *max_length));
  return body;
}

bool Connection::poll_until(detail::Clock::time_point deadline) const {
  check_readable("poll");
  for (;;) {
    const auto left = std::max(deadline - detail::Clock::now(), detail::Clock::duration::zero());
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd watch{.fd = fd_.get(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&watch, 1, static_cast<int>(std::min<long long>(ms, 60'000)));
    if (ready > 0) return true;  // data, or the end of the stream: recv will not block either way
    if (ready < 0 && errno != EINTR) throw_os_error("Connection.poll");
    if (ready == 0 && detail::Clock::now() >= deadline) return false;
  }
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_os_error("Pipe");
  detail::UniqueFd a(fds[0]);
  detail::UniqueFd b(fds[1]);
  if (duplex) return {Connection(std::move(a), true, true), Connection(std::move(b), true, true)};
  ::shutdown(a.get(), SHUT_WR);
  ::shutdown(b.get(), SHUT_RD);
  return {Connection(std::move(a), true, false), Connection(std::move(b), false, true)};
}

}  // namespace cohort
