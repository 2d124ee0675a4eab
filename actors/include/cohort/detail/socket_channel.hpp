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
#include <memory>
#include <string>
#include <string_view>

#include "cohort/address.hpp"
#include "cohort/detail/frame_buffer.hpp"
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

  /// `bytes` as a frame: its length, then itself (SerializationError past what a length can say).
  static std::string frame(std::string_view bytes);
  /// Writes what the socket takes of `framed` at once, without waiting, from any thread while no other
  /// send runs; returns how much went (0 also when the peer has gone: the next send or receive says so).
  std::size_t send_now(std::string_view framed) noexcept;
  /// Sends bytes framed already (a frame, or what send_now left of one). One send at a time.
  task<void> async_send_framed(std::string framed);
  /// Receives one message of at most `limit` bytes (0: the channel's maximum). EOFError if the peer
  /// closed between messages, or mid-message ("truncated"); SerializationError for a frame past the
  /// limit (the channel is closed then: what follows cannot be framed). One receive at a time.
  task<std::string> async_recv(std::size_t limit = 0);

  /// Gives up the socket's descriptor, to be used without Asio; the channel is closed afterwards.
  /// ProcessError if bytes that the peer sent are read already (they would be lost).
  int release();

  /// The bytes of a frame's header: its length.
  static constexpr std::size_t header_size = FrameBuffer::header_size;

  /// Ends the connection (both directions); pending operations fail. Idempotent.
  void close() noexcept;
  bool is_open() const noexcept { return socket_.is_open(); }

  /// Who is at the other end, for logs: "127.0.0.1:40312" or "unix socket".
  std::string peer() const;
  /// Whether this is a Unix-domain socket, over which descriptors can cross (SCM_RIGHTS).
  bool is_unix_socket() const;
  /// The socket's descriptor, still the channel's: for a message with descriptors attached, written
  /// while no send or receive of the channel's is in progress.
  int native_handle() noexcept { return socket_.native_handle(); }

 private:
  [[noreturn]] void fail(const boost::system::error_code& ec, const char* what, bool mid_message);
  /// Reads what has arrived (at least a byte) behind what is buffered.
  task<void> fill();

  Socket socket_;
  std::size_t max_message_;
  FrameBuffer in_;
};

}  // namespace cohort::detail
