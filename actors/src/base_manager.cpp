// BaseManager: the server process (forked, so that the registered types' factories come with it), the
// server run in this thread, and the client's connection.
#include "cohort/base_manager.hpp"

#include <fmt/format.h>

#include "cohort/manager.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "cohort/codec.hpp"
#include "cohort/detail/authentication.hpp"
#include "cohort/detail/process_actor.hpp"
#include "cohort/detail/remote_failure.hpp"
#include "cohort/detail/socket_listener.hpp"
#include "cohort/error.hpp"
#include "cohort/future.hpp"
#include "cohort/log.hpp"
#include "cohort/runtime.hpp"
#include "cohort/spawn.hpp"

namespace cohort {

namespace {

/// What a server process says first: the address it listens at, or why it could not start.
struct ServerHello {
  bool ok = true;
  Address address;
  detail::RemoteFailure failure;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(ok, address, failure);
  }
};

}  // namespace

namespace detail {

void serve_manager_in_child(Connection parent, std::uintptr_t manager) {
  // Forked: the manager's object, with its registry, is this process's copy of the parent's.
  const auto& self = *reinterpret_cast<const BaseManager*>(manager);
  // Polling when idle: on an idle machine it saves the server's wake-up on every request that comes
  // over a socket (measured before the shared-memory lanes, a dict call from a child: 36 k/s against
  // 19 k/s sleeping); with every CPU busy, sleeping did better (62 k/s against 38 k/s), as the polling
  // takes the CPU from the client. A lane's reader polls its ring in the loop either way.
  Runtime runtime(1, IdleLoop::poll_then_sleep);
  std::optional<ManagerServer> server;
  try {
    server.emplace(runtime.context(), self.options_.address, self.options_.authkey, self.registry_, self.limits());
  } catch (...) {
    parent.send(ServerHello{false, {}, describe_failure(std::current_exception())});
    return;
  }
  parent.send(ServerHello{true, server->address(), {}});
  runtime.run(server->serve());
}

}  // namespace detail

BaseManager::BaseManager(BaseManagerOptions options) : options_(std::move(options)), address_(options_.address) {}

BaseManager::~BaseManager() {
  try {
    shutdown();
  } catch (const std::exception& e) {
    detail::log_warning(fmt::format("BaseManager: shutdown failed: {}", e.what()));
  }
}

void BaseManager::add_type(std::string typeid_, detail::ManagedType type) {
  if (server_) throw InvalidStateError("BaseManager::register_type: the server has started already");
  if (!registry_.emplace(typeid_, std::move(type)).second)
    throw std::invalid_argument("BaseManager::register_type: '" + typeid_ + "' is registered already");
}

void BaseManager::start() {
  if (server_) throw InvalidStateError("BaseManager::start: the server has started already");
  auto [parent_end, child_end] = Pipe();
  auto server = std::make_unique<Process>(
      ProcessOptions{.name = "BaseManager", .daemon = true, .start_method = StartMethod::fork},
      &detail::serve_manager_in_child, std::move(child_end), reinterpret_cast<std::uintptr_t>(this));
  detail::run_on_launcher_thread([&] { server->start(); });
  ServerHello hello;
  try {
    hello = parent_end.recv<ServerHello>();
  } catch (const EOFError&) {
    server->join();
    throw ProcessError(fmt::format("BaseManager: the server process died before it listened at {}",
                                   options_.address.to_string()));
  }
  if (!hello.ok) {
    server->join();
    detail::rethrow_failure(hello.failure);
  }
  address_ = hello.address;
  server_ = std::move(server);
  try {
    connect();
  } catch (...) {
    server_->kill();
    server_->join();
    server_.reset();
    throw;
  }
}

void BaseManager::serve_forever(const std::function<void(const Address&)>& on_listening) {
  Runtime runtime(1, IdleLoop::poll_then_sleep);  // see serve_manager_in_child
  detail::ManagerServer server(runtime.context(), options_.address, options_.authkey, registry_, limits());
  address_ = server.address();
  if (on_listening) on_listening(address_);
  try {
    runtime.run(server.serve());
  } catch (const CancelledError&) {
    // SIGTERM or SIGINT stopped the loop: the server's way to end, as a client's shutdown is.
  }
}

task<void> BaseManager::async_connect() {
  auto& loop = detail::loop_for_new_actor(ActorOptions{});
  auto connection = co_await detail::ManagerConnection::async_open(
      loop, address_, options_.authkey, std::chrono::duration_cast<detail::Clock::duration>(options_.timeout));
  if (connection_) connection_->close("the manager connected again");
  connection_ = std::move(connection);
}

void BaseManager::connect() { detail::run_on_proxy_loop(async_connect()); }

detail::ManagerLimits BaseManager::limits() const {
  detail::ManagerLimits limits;
  limits.max_connections = options_.max_connections;
  limits.max_message = options_.max_message;
  limits.handshake_timeout = std::chrono::duration_cast<detail::Clock::duration>(options_.timeout);
  return limits;
}

void BaseManager::check_connected() const {
  if (!connection_) throw InvalidStateError("BaseManager: not connected (call start() or connect() first)");
}

std::string BaseManager::create_object(const std::string& factory, std::string arguments) {
  check_connected();
  std::string name;
  detail::run_on_proxy_loop([](std::shared_ptr<detail::ManagerConnection> connection, std::string key, std::string bytes,
          std::string& out) -> task<void> { out = co_await connection->async_create(std::move(key), std::move(bytes)); }(
      connection_, factory, std::move(arguments), name));
  return name;
}

void BaseManager::shutdown() {
  if (server_ && connection_) {
    try {
      detail::run_on_proxy_loop(connection_->async_shutdown_server());
    } catch (const std::exception& e) {
      detail::log_warning(fmt::format("BaseManager: the server did not answer the shutdown: {}", e.what()));
    }
  }
  if (connection_) {
    connection_->close(fmt::format("the manager at {} is shut down", address_.to_string()));
    connection_.reset();
  }
  if (server_) {
    if (!server_->is_alive() && server_->exitcode() != 0)
      detail::log_warning(fmt::format("BaseManager: the server process had ended: {}",
                                      detail::describe_exit(server_->exitcode().value_or(0))));
    if (!server_->join(std::chrono::seconds(5))) {
      detail::log_warning("BaseManager: the server process did not stop within 5 s; killing it");
      server_->kill();
      server_->join();
    }
    server_.reset();
    // A server that was killed could not remove its socket file; the process that started it does.
    detail::remove_stale_socket_file(address_);
  }
}

std::string detail::default_manager_socket_path() {
  static std::atomic<int> count{0};
  return (std::filesystem::temp_directory_path() /
          fmt::format("cohort-manager-{}-{}.sock", ::getpid(), ++count))
      .string();
}

Manager::Manager(ManagerOptions options)
    : manager_({.address = options.address ? *options.address : Address::unix_socket(detail::default_manager_socket_path()),
                .authkey = options.authkey.empty() ? detail::random_bytes(32) : std::move(options.authkey)}) {
  manager_.start();
}

}  // namespace cohort
