// SocketListener: TCP and Unix-domain acceptors behind one type.
#include "cohort/detail/socket_listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <cstring>

#include "cohort/error.hpp"

namespace cohort::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using Socket = SocketChannel::Socket;

namespace {

/// Whether something listens on the Unix socket at `path` (a file left by a dead listener refuses).
bool unix_socket_answers(const std::string& path) {
  asio::io_context probe;
  local::socket socket(probe);
  boost::system::error_code ec;
  socket.connect(local::endpoint(path), ec);
  return !ec;
}

}  // namespace

SocketListener::SocketListener(asio::io_context& loop, const Address& address, int backlog)
    : acceptor_(loop), address_(address) {
  boost::system::error_code ec;
  const auto refuse = [&](const std::string& why) {
    throw ProcessError(fmt::format("cannot listen on {}: {}", address.to_string(), why));
  };
  if (address.is_tcp()) {
    const auto ip = asio::ip::make_address(address.host(), ec);
    if (ec) refuse("the host must be a numeric address (such as 127.0.0.1 or 0.0.0.0)");
    const tcp::endpoint endpoint(ip, address.port());
    acceptor_.open(Socket::protocol_type(endpoint.protocol().family(), endpoint.protocol().protocol()), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(Socket::endpoint_type(endpoint), ec);
    if (!ec) acceptor_.listen(backlog, ec);
    if (ec) refuse(ec.message());
    tcp::endpoint bound;
    const auto local_end = acceptor_.local_endpoint();
    std::memcpy(bound.data(), local_end.data(), local_end.size());
    bound.resize(local_end.size());
    address_ = Address::tcp(address.host(), bound.port());
    return;
  }
  const std::string& path = address.path();
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) refuse("the path is empty or longer than 107 bytes");
  struct stat status {};
  if (!address.is_abstract() && ::lstat(path.c_str(), &status) == 0) {
    if (!S_ISSOCK(status.st_mode)) refuse("the path exists and is not a socket");
    if (unix_socket_answers(path)) refuse("another listener is serving it");
    ::unlink(path.c_str());  // a socket file whose listener is gone
  }
  acceptor_.open(Socket::protocol_type(AF_UNIX, 0), ec);
  if (!ec) acceptor_.bind(Socket::endpoint_type(local::endpoint(path)), ec);
  if (!ec) owns_path_ = !address.is_abstract();  // an abstract name has no file to remove
  if (!ec) acceptor_.listen(backlog, ec);
  if (ec) {
    close();
    refuse(ec.message());
  }
}

SocketListener::~SocketListener() { close(); }

task<SocketChannel> SocketListener::async_accept(std::size_t max_message) {
  boost::system::error_code ec;
  for (;;) {
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      if (address_.is_tcp()) socket.set_option(tcp::no_delay(true), ec);
      co_return SocketChannel(std::move(socket), max_message);
    }
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor || !acceptor_.is_open())
      throw CancelledError("the listener on " + address_.to_string() + " is closed");
    // A connection that went away before it was accepted: the next one may do.
    if (ec != asio::error::connection_aborted && ec != asio::error::connection_reset)
      throw ProcessError(fmt::format("accepting on {} failed: {}", address_.to_string(), ec.message()));
  }
}

void SocketListener::close() noexcept {
  boost::system::error_code ignored;
  if (acceptor_.is_open()) acceptor_.close(ignored);
  if (owns_path_) {
    ::unlink(address_.path().c_str());
    owns_path_ = false;
  }
}

bool remove_stale_socket_file(const Address& address) noexcept {
  if (address.is_tcp() || address.is_abstract()) return false;
  struct stat status {};
  const std::string& path = address.path();
  if (::lstat(path.c_str(), &status) != 0 || !S_ISSOCK(status.st_mode)) return false;
  try {
    if (unix_socket_answers(path)) return false;
  } catch (...) {
    return false;  // no probe (no memory or file descriptor left): keep the file, as for a live listener
  }
  return ::unlink(path.c_str()) == 0;
}

}  // namespace cohort::detail
