// SocketChannel: length-prefixed frames over a TCP or Unix-domain stream socket.
#include "cohort/detail/socket_channel.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "cohort/error.hpp"

namespace cohort::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t header_size = SocketChannel::header_size;

std::array<unsigned char, header_size> encode_length(std::size_t length) {
  return {static_cast<unsigned char>(length), static_cast<unsigned char>(length >> 8),
          static_cast<unsigned char>(length >> 16), static_cast<unsigned char>(length >> 24)};
}

/// The largest frame the 4-byte length can announce.
constexpr std::size_t max_frame = 0xFFFFFFFFu;

bool is_peer_gone(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == asio::error::not_connected || ec == asio::error::bad_descriptor;
}

}  // namespace

SocketChannel::SocketChannel(Socket socket, std::size_t max_message)
    : socket_(std::move(socket)), max_message_(std::min(max_message, max_frame)) {}

task<SocketChannel> SocketChannel::async_connect(asio::io_context& loop, const Address& address,
                                                 std::size_t max_message) {
  Socket socket(loop);
  boost::system::error_code ec;
  if (address.is_tcp()) {
    tcp::resolver resolver(loop);
    const auto found = co_await resolver.async_resolve(address.host(), std::to_string(address.port()),
                                                       tcp::resolver::numeric_service,
                                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      throw ProcessError(fmt::format("cannot connect to {}: the host is unknown ({})", address.to_string(), ec.message()));
    for (const auto& entry : found) {
      if (socket.is_open()) socket.close();
      co_await socket.async_connect(Socket::endpoint_type(entry.endpoint()), asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) break;
    }
    if (!ec) socket.set_option(tcp::no_delay(true));
  } else {
    co_await socket.async_connect(Socket::endpoint_type(asio::local::stream_protocol::endpoint(address.path())),
                                  asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec == asio::error::operation_aborted) throw CancelledError("connecting to " + address.to_string() + " was cancelled");
  if (ec) throw ProcessError(fmt::format("cannot connect to {}: {}", address.to_string(), ec.message()));
  co_return SocketChannel(std::move(socket), max_message);
}

task<void> SocketChannel::async_send(std::string bytes) {
  if (bytes.size() > max_frame)
    throw SerializationError(fmt::format("a message of {} bytes is longer than a frame can carry", bytes.size()));
  const auto header = encode_length(bytes.size());
  const std::array<asio::const_buffer, 2> frame{asio::buffer(header), asio::buffer(bytes)};
  boost::system::error_code ec;
  co_await asio::async_write(socket_, frame, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) fail(ec, "send", false);
}

std::string SocketChannel::frame(std::string_view bytes) {
  if (bytes.size() > max_frame)
    throw SerializationError(fmt::format("a message of {} bytes is longer than a frame can carry", bytes.size()));
  const auto header = encode_length(bytes.size());
  std::string framed;
  framed.reserve(header_size + bytes.size());
  framed.append(reinterpret_cast<const char*>(header.data()), header_size);
  framed.append(bytes);
  return framed;
}

std::size_t SocketChannel::send_now(std::string_view framed) noexcept {
  std::size_t sent = 0;
  while (sent < framed.size()) {
    const auto n = ::send(socket_.native_handle(), framed.data() + sent, framed.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // full (EAGAIN) or failed: the rest goes through async_send_framed, which reports a failure
  }
  return sent;
}

task<void> SocketChannel::async_send_framed(std::string framed) {
  boost::system::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(framed), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) fail(ec, "send", false);
}

task<std::string> SocketChannel::async_recv(std::size_t limit) {
  if (limit == 0 || limit > max_message_) limit = max_message_;
  std::optional<std::size_t> length;
  while (!(length = in_.next_length())) co_await fill();
  if (*length > limit) {
    close();  // the rest of the stream cannot be framed
    throw SerializationError(
        fmt::format("the peer {} announced a message of {} bytes, past the limit of {}", peer(), *length, limit));
  }
  std::string bytes = in_.take(*length);
  if (const std::size_t have = bytes.size(); have < *length) {
    bytes.resize(*length);
    boost::system::error_code ec;
    co_await asio::async_read(socket_, asio::buffer(bytes.data() + have, *length - have),
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) fail(ec, "receive", true);
  }
  co_return bytes;
}

task<void> SocketChannel::fill() {
  const auto room = in_.room();
  boost::system::error_code ec;
  const std::size_t got = co_await socket_.async_read_some(asio::buffer(room.data(), room.size()),
                                                           asio::redirect_error(asio::use_awaitable, ec));
  in_.filled(got);
  if (ec) fail(ec, "receive", in_.buffered() > 0);
}

void SocketChannel::fail(const boost::system::error_code& ec, const char* what, bool mid_message) {
  if (ec == asio::error::operation_aborted) throw CancelledError(fmt::format("a socket {} was cancelled", what));
  if (mid_message && is_peer_gone(ec))
    throw EOFError(fmt::format("the peer closed the connection in the middle of a message (truncated)"));
  if (is_peer_gone(ec)) throw EOFError("the peer closed the connection");
  throw ProcessError(fmt::format("socket {} failed: {}", what, ec.message()));
}

int SocketChannel::release() {
  if (in_.buffered() != 0) throw ProcessError("a socket given up with what its peer sent unread");
  return socket_.release();
}

void SocketChannel::close() noexcept {
  boost::system::error_code ignored;
  if (!socket_.is_open()) return;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
}

bool SocketChannel::is_unix_socket() const {
  boost::system::error_code ec;
  const auto local = socket_.local_endpoint(ec);
  return !ec && local.data()->sa_family == AF_UNIX;
}

std::string SocketChannel::peer() const {
  boost::system::error_code ec;
  const auto remote = socket_.remote_endpoint(ec);
  if (ec) return "(not connected)";
  const int family = remote.data()->sa_family;
  if (family != AF_INET && family != AF_INET6) return "unix socket";
  tcp::endpoint endpoint;
  std::memcpy(endpoint.data(), remote.data(), remote.size());
  endpoint.resize(remote.size());
  return fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

}  // namespace cohort::detail
