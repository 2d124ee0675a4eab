// The listening side of a manager's address: a TCP or Unix-domain acceptor that hands out each new
// connection as a SocketChannel. A Unix-domain socket's file is created by the listener and removed
// when it closes.
#pragma once

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>

#include <cstddef>

#include "cohort/address.hpp"
#include "cohort/detail/socket_channel.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

class SocketListener {
 public:
  /// Listens at `address` (TCP port 0: any free port). ProcessError naming the address if it cannot
  /// (in use, no such directory, not a numeric host); a Unix path already taken by a live listener is
  /// refused, a stale socket file left by a dead one is replaced.
  SocketListener(boost::asio::io_context& loop, const Address& address, int backlog = 128);
  ~SocketListener();
  SocketListener(const SocketListener&) = delete;
  SocketListener& operator=(const SocketListener&) = delete;

  /// The bound address: for TCP port 0, the port the system chose.
  const Address& address() const noexcept { return address_; }

  /// The next connection, whose frames may be up to `max_message` bytes. CancelledError once closed.
  task<SocketChannel> async_accept(std::size_t max_message = default_max_message);

  /// Stops listening (a pending accept fails) and removes a Unix socket's file. Idempotent.
  void close() noexcept;

 private:
  boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol> acceptor_;
  Address address_;
  bool owns_path_ = false;
};

/// Removes the file of a Unix-domain `address` when no listener answers on it: the file a server that
/// was killed (so never closed its listener) leaves behind. Nothing for TCP, an abstract name, or a path
/// that is not a socket. Whether a file was removed.
bool remove_stale_socket_file(const Address& address) noexcept;

}  // namespace cohort::detail
