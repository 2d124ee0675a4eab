// The acceptor of cohort::Server: one task per connection, a cap on connections, a graceful drain.
#include "cohort/server.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/async_wait.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/error.hpp"
#include "cohort/log.hpp"
#include "cohort/sleep.hpp"
#include "cohort/spawn.hpp"

namespace cohort::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  using Socket = Server::Socket;

  ServerCore(asio::io_context& loop, ServerOptions options, Server::Handler handler)
      : loop_(loop), options_(std::move(options)), handler_(std::move(handler)), acceptor_(loop) {
    if (!handler_) throw std::invalid_argument("cohort::Server: the connection handler is empty");
    if (options_.max_connections == 0) throw std::invalid_argument("cohort::Server: max_connections must be at least 1");
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec)
      throw std::invalid_argument(
          fmt::format("cohort::Server: '{}' is not an IP address (give a numeric address, such as 127.0.0.1)",
                      options_.host));
    const tcp::endpoint endpoint(address, options_.port);
    try {
      acceptor_.open(endpoint.protocol());
      acceptor_.set_option(tcp::acceptor::reuse_address(true));
      acceptor_.bind(endpoint);
      acceptor_.listen(options_.backlog);
    } catch (const boost::system::system_error& e) {
      throw boost::system::system_error(
          e.code(), fmt::format("cohort::Server: cannot listen on {}:{}", options_.host, options_.port));
    }
    port_ = acceptor_.local_endpoint().port();
  }

  /// The accept loop; holds the core, which a Server destroyed meanwhile lets go.
  static task<void> serve_forever(std::shared_ptr<ServerCore> self) { co_await self->serve(); }

  void close() {
    std::optional<Executor> serving;
    std::shared_ptr<FutureState<void>> wake;
    bool never_served = false;
    {
      std::lock_guard lock(mutex_);
      if (closing_.exchange(true)) return;
      serving = serving_executor_;
      wake = std::exchange(wake_, nullptr);
      never_served = !serving && !served_;
    }
    // Completed with no lock held: a waiter may resume on this thread.
    closing_state_->try_set_value();
    if (never_served) closed_->try_set_value();
    if (wake) wake->try_set_value();
    // The acceptor is only touched on the executor of the coroutine that serves.
    if (serving) asio::post(*serving, [self = shared_from_this()] { self->cancel_accept(); });
  }

  /// The destructor of Server: a graceful stop that does not wait, with the connections cancelled.
  void abandon() {
    close();
    {
      std::lock_guard lock(mutex_);
      if (!serving_executor_ && !served_) {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
      }
    }
    cancel_connections();
  }

  bool closing() const noexcept { return closing_.load(); }
  std::shared_ptr<FutureState<void>> closing_state() const { return closing_state_; }
  std::shared_ptr<FutureState<void>> closed() const { return closed_; }
  const std::string& host() const noexcept { return options_.host; }
  std::uint16_t port() const noexcept { return port_; }
  std::size_t active() const {
    std::lock_guard lock(mutex_);
    return live_.size();
  }
  std::uint64_t accepted() const noexcept { return accepted_.load(); }

 private:
  void cancel_accept() {
    boost::system::error_code ignored;
    acceptor_.cancel(ignored);
  }

  /// Cancels every connection running now; returns how many there were.
  std::size_t cancel_connections() {
    std::vector<std::shared_ptr<TaskControl>> running;
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, control] : live_) running.push_back(control);
    }
    for (auto& control : running) request_cancel(control);
    return running.size();
  }

  /// A state that completes when a connection ends or close() is called; null if either happened.
  std::shared_ptr<FutureState<void>> wait_for_room() {
    std::lock_guard lock(mutex_);
    if (closing_ || live_.size() < options_.max_connections) return nullptr;
    if (!wake_) wake_ = std::make_shared<FutureState<void>>();
    return wake_;
  }

  /// A state that completes once no connection is left.
  std::shared_ptr<FutureState<void>> wait_for_drain() {
    std::lock_guard lock(mutex_);
    auto drained = std::make_shared<FutureState<void>>();
    if (live_.empty())
      drained->set_value();
    else
      drained_ = drained;
    return drained;
  }

  void start_connection(Socket socket, const Executor& strand) {
    const std::uint64_t id = ++accepted_;
    auto control = make_task_control_on(strand);
    {
      std::lock_guard lock(mutex_);
      live_.emplace(id, control);
    }
    start_task(control, run_connection(shared_from_this(), std::move(socket)), std::make_shared<FutureState<void>>(),
               [self = shared_from_this(), id] { self->connection_ended(id); });
  }

  void connection_ended(std::uint64_t id) {
    std::shared_ptr<FutureState<void>> wake, drained;
    {
      std::lock_guard lock(mutex_);
      live_.erase(id);
      wake = std::exchange(wake_, nullptr);
      if (live_.empty()) drained = std::exchange(drained_, nullptr);
    }
    if (wake) wake->try_set_value();
    if (drained) drained->try_set_value();
  }

  static task<void> run_connection(std::shared_ptr<ServerCore> self, Socket socket) {
    std::string peer;
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    peer = ec ? std::string("a client") : fmt::format("{}:{}", remote.address().to_string(), remote.port());
    try {
      co_await self->handler_(std::move(socket));
    } catch (const CancelledError&) {
    } catch (const boost::system::system_error& e) {
      if (e.code() != asio::error::operation_aborted)
        log_warning(fmt::format("server {}:{}: connection from {} ended: {}", self->options_.host, self->port_, peer,
                                e.what()));
    } catch (...) {
      log_warning(fmt::format("server {}:{}: connection from {} failed: {}", self->options_.host, self->port_, peer,
                              describe_error(std::current_exception())));
    }
  }

  task<void> serve();
  /// Finishes a graceful stop: no more accepts, connections in flight get drain_timeout, then cancel.
  task<void> drain();

  asio::io_context& loop_;
  const ServerOptions options_;
  const Server::Handler handler_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;

  std::atomic<bool> closing_{false};
  std::atomic<std::uint64_t> accepted_{0};
  const std::shared_ptr<FutureState<void>> closing_state_ = std::make_shared<FutureState<void>>();
  const std::shared_ptr<FutureState<void>> closed_ = std::make_shared<FutureState<void>>();

  mutable std::mutex mutex_;  // guards the fields below
  std::optional<Executor> serving_executor_;
  bool served_ = false;
  std::unordered_map<std::uint64_t, std::shared_ptr<TaskControl>> live_;
  std::shared_ptr<FutureState<void>> wake_;
  std::shared_ptr<FutureState<void>> drained_;
};

task<void> ServerCore::serve() {
  const Executor here = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(mutex_);
    if (served_) throw std::logic_error("cohort::Server: serve_forever may run only once");
    served_ = true;
    if (!closing_) serving_executor_ = here;
  }
  bool shared = false;
  while (!closing_) {
    if (auto wake = wait_for_room()) {
      bool cancelled = false;
      try {
        co_await async_wait_done(wake);
      } catch (const CancelledError&) {
        cancelled = true;
      }
      if (cancelled) break;
      continue;
    }
    // Each connection's own executor: a strand of the loop when several threads run it.
    const Executor strand = task_executor(loop_.get_executor(), shared);
    boost::system::error_code ec;
    std::optional<Socket> socket;
    try {
      socket.emplace(co_await acceptor_.async_accept(strand, asio::redirect_error(asio::use_awaitable, ec)));
    } catch (const boost::system::system_error&) {
      // Asio's refusal to start an accept in a coroutine cancelled before: a stop like any other.
      ec = asio::error::operation_aborted;
    }
    if (ec == asio::error::operation_aborted) break;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: the listener stays; try again once some have gone.
      log_warning(fmt::format("server {}:{}: accept failed: {}", options_.host, port_, ec.message()));
      bool cancelled = false;
      try {
        co_await sleep(std::chrono::milliseconds(50));
      } catch (const CancelledError&) {
        cancelled = true;
      }
      if (cancelled) break;
      continue;
    }
    start_connection(std::move(*socket), strand);
  }
  // A cancelled serve_forever (SIGTERM under Runtime::run) stops as gracefully as close(): the drain's
  // own waits need a cancellation state that is clear again.
  co_await asio::this_coro::reset_cancellation_state();
  close();
  co_await drain();
}

task<void> ServerCore::drain() {
  {
    std::lock_guard lock(mutex_);
    serving_executor_.reset();
  }
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  const std::size_t in_flight = active();
  if (in_flight > 0)
    log_debug(fmt::format("server {}:{}: stopping, {} connection(s) in flight", options_.host, port_, in_flight));
  auto drained = wait_for_drain();
  const bool finished = co_await async_wait_done(drained, Clock::now() + options_.drain_timeout);
  if (!finished) {
    const std::size_t cancelled = cancel_connections();
    log_warning(fmt::format("server {}:{}: {} connection(s) still running after {} ms: cancelled them",
                            options_.host, port_, cancelled, options_.drain_timeout.count()));
    // A handler ends at its next co_await once cancelled; one that never awaits is left behind, logged.
    if (!co_await async_wait_done(drained, Clock::now() + std::chrono::seconds(1)))
      log_error(fmt::format("server {}:{}: {} connection(s) ignored the cancellation", options_.host, port_,
                            active()));
  }
  closed_->try_set_value();
}

}  // namespace cohort::detail

namespace cohort {

namespace {

boost::asio::io_context& current_loop_for_server() {
  auto* loop = detail::current_loop();
  if (loop == nullptr)
    throw std::logic_error(
        "cohort::Server: no event loop runs on this thread; build it in a coroutine, or pass the Runtime");
  return *loop;
}

}  // namespace

Server::Server(ServerOptions options, Handler handler)
    : core_(std::make_shared<detail::ServerCore>(current_loop_for_server(), std::move(options), std::move(handler))) {}

Server::Server(Runtime& runtime, ServerOptions options, Handler handler)
    : core_(std::make_shared<detail::ServerCore>(runtime.context(), std::move(options), std::move(handler))) {}

Server::~Server() { core_->abandon(); }

task<void> Server::serve_forever() { return detail::ServerCore::serve_forever(core_); }

void Server::close() { core_->close(); }

bool Server::closing() const noexcept { return core_->closing(); }

task<void> Server::wait_closing() const { co_await detail::async_wait_done(core_->closing_state()); }

task<void> Server::wait_closed() const { co_await detail::async_wait_done(core_->closed()); }

const std::string& Server::host() const noexcept { return core_->host(); }

std::uint16_t Server::port() const noexcept { return core_->port(); }

std::size_t Server::active_connections() const { return core_->active(); }

std::uint64_t Server::accepted_connections() const noexcept { return core_->accepted(); }

}  // namespace cohort
