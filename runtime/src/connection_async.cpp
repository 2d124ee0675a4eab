// Connection's coroutine side: the same messages, read and written without blocking the event loop.
// The socket stays in blocking mode for the blocking API; here every read and write is a
// non-blocking attempt (MSG_DONTWAIT) and, when it would block, an Asio wait for readiness.
#include <sys/socket.h>

#include <boost/asio/this_coro.hpp>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cohort/connection.hpp"
#include "cohort/error.hpp"
#include "borrowed_descriptor.hpp"

namespace cohort {

namespace {

namespace asio = boost::asio;

using detail::BorrowedDescriptor;

/// Reads exactly `size` bytes unless the stream ends first; returns how many were read.
task<std::size_t> async_read_full(BorrowedDescriptor& watch, int fd, char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::recv(fd, data + done, size - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n == 0) {
      co_return done;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await watch.wait(asio::posix::descriptor_base::wait_read);
    } else if (errno != EINTR) {
      throw Error(fmt::format("Connection.async_recv: {}", std::strerror(errno)));
    }
  }
  co_return done;
}

task<void> async_write_full(BorrowedDescriptor& watch, int fd, const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await watch.wait(asio::posix::descriptor_base::wait_write);
    } else if (errno == EPIPE || errno == ECONNRESET) {
      throw EOFError("Connection.async_send: the other end is closed");
    } else if (errno != EINTR) {
      throw Error(fmt::format("Connection.async_send: {}", std::strerror(errno)));
    }
  }
}

}  // namespace

task<void> Connection::async_send_bytes(std::string bytes) {
  check_writable("async_send");
  detail::check_message_size(bytes.size(), "Connection.async_send");
  const detail::MessageHeader header{detail::message_magic, 0, bytes.size()};
  BorrowedDescriptor watch(co_await asio::this_coro::executor, fd_.get(), "Connection.async_send");
  co_await async_write_full(watch, fd_.get(), reinterpret_cast<const char*>(&header), sizeof header);
  co_await async_write_full(watch, fd_.get(), bytes.data(), bytes.size());
}

task<std::string> Connection::async_recv_bytes() {
  check_readable("async_recv");
  const int fd = fd_.get();
  BorrowedDescriptor watch(co_await asio::this_coro::executor, fd, "Connection.async_recv");
  detail::MessageHeader header{};
  const std::size_t got = co_await async_read_full(watch, fd, reinterpret_cast<char*>(&header), sizeof header);
  const std::uint64_t size = detail::message_body_size(header, got, "Connection.async_recv");
  std::string body;
  while (body.size() < size) {
    const std::size_t before = body.size();
    const std::size_t want = detail::message_read_step(before, size);
    body.resize(before + want);
    const std::size_t n = co_await async_read_full(watch, fd, body.data() + before, want);
    if (n < want) detail::throw_truncated_body("Connection.async_recv", before + n, size);
  }
  co_return body;
}

}  // namespace cohort
