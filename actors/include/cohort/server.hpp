// A TCP server on the event loop (Python: asyncio.start_server and Server.serve_forever): one coroutine
// per connection, a cap on connections, and a graceful stop that finishes what is in flight.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cohort/runtime.hpp"
#include "cohort/task.hpp"

namespace cohort {

struct ServerOptions {
  /// The address to listen on; loopback unless said otherwise.
  std::string host = "127.0.0.1";
  /// 0 picks a free port; port() tells which.
  std::uint16_t port = 0;
  /// The most connections served at once. At the cap the server stops accepting (the kernel's backlog
  /// holds new clients) until a connection ends, so a flood of clients costs queue space, not memory.
  std::size_t max_connections = 1024;
  /// How long a graceful stop waits for connections in flight before it cancels them.
  std::chrono::milliseconds drain_timeout{10'000};
  /// The listen backlog.
  int backlog = 1024;
};

namespace detail {
class ServerCore;
}

/// Listens at once when built (so port() is known before serving) and serves from serve_forever(). Each
/// accepted connection runs `handler(socket)` as a task of its own on the server's Runtime (on a strand
/// of its own when the Runtime has several threads); an exception that escapes a handler is logged and
/// ends that connection only.
///
/// A graceful stop (close(), or serve_forever() cancelled: SIGINT / SIGTERM under Runtime::run) stops
/// accepting, lets the connections in flight finish for up to `drain_timeout`, cancels those still
/// running, and then serve_forever() returns. Handlers that hold idle connections open (HTTP keep-alive)
/// should check closing() between requests and end, so that a stop does not wait for their timeout.
class Server {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using Handler = std::function<task<void>(Socket)>;

  /// Listens on the loop of the Runtime running on this thread (from a coroutine).
  Server(ServerOptions options, Handler handler);
  /// Listens on `runtime`'s loop (from any thread).
  Server(Runtime& runtime, ServerOptions options, Handler handler);
  /// Closes the listening socket; connections still running are cancelled.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Accepts and serves until a graceful stop, then returns once the connections are done. Once only.
  task<void> serve_forever();
  /// Begins a graceful stop; thread-safe, and a no-op when stopping already.
  void close();
  /// Whether a graceful stop has begun.
  bool closing() const noexcept;
  /// Completes when a graceful stop begins: the moment to tell idle connections to end (say goodbye to
  /// chat clients, close kept-alive sockets) rather than wait out drain_timeout.
  task<void> wait_closing() const;
  /// Completes once serve_forever() has returned (at once if it never ran and close() was called).
  task<void> wait_closed() const;

  const std::string& host() const noexcept;
  std::uint16_t port() const noexcept;
  /// Connections being served now.
  std::size_t active_connections() const;
  /// Connections accepted since the server started.
  std::uint64_t accepted_connections() const noexcept;

 private:
  std::shared_ptr<detail::ServerCore> core_;
};

}  // namespace cohort
