// A message channel over a stream socket (TCP or Unix-domain): each message is a frame of a 4-byte
// little-endian length and that many bytes. What a manager's server and its clients exchange, the
// handshake included. A peer cannot make it allocate past the limit of the frame it reads, and a frame
// cut short or too long ends the channel with an error that says which. A time limit is the caller's:
// cancelling the awaiting coroutine (cohort::wait_for) cancels the socket's operation.
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cohort/address.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// The largest message a channel takes unless told otherwise: 64 MiB.
inline constexpr std::size_t default_max_message = std::size_t{64} << 20;

class SocketChannel {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;

  /// `max_message`: the longest frame async_recv accepts.
  explicit SocketChannel(Socket socket, std::size_t max_message = default_max_message);

  /// Connects to `address` on `loop`: ProcessError naming the address if nothing listens there.
  static task<SocketChannel> async_connect(boost::asio::io_context& loop, const Address& address,
                                           std::size_t max_message = default_max_message);

  SocketChannel(SocketChannel&&) noexcept = default;
  SocketChannel& operator=(SocketChannel&&) noexcept = default;

  /// Sends one message. One send at a time per channel. EOFError if the peer has gone.
  task<void> async_send(std::string bytes);
  /// Receives one message of at most `limit` bytes (0: the channel's maximum). EOFError if the peer
  /// closed between messages, or mid-message ("truncated"); SerializationError for a frame past the
  /// limit (the channel is closed then: what follows cannot be framed). One receive at a time.
  task<std::string> async_recv(std::size_t limit = 0);

  /// Ends the connection (both directions); pending operations fail. Idempotent.
  void close() noexcept;
  bool is_open() const noexcept { return socket_.is_open(); }

  /// Who is at the other end, for logs: "127.0.0.1:40312" or "unix socket".
  std::string peer() const;

 private:
  [[noreturn]] void fail(const boost::system::error_code& ec, const char* what, bool mid_message);

  Socket socket_;
  std::size_t max_message_;
};

}  // namespace cohort::detail
