// A manager's server: the objects registered with it, each hosted as an actor on the server's loop (one
// call at a time), served to every client that passes the authkey handshake. A server on TCP listens
// on an abstract Unix-domain socket as well, for its clients on the same machine (see
// ManagerKind::same_machine_address). A TCP port is open to
// anyone who can reach it, so every peer is held to limits: a deadline for the handshake, a cap on
// connections, on the size of a message and on the calls one connection may have in flight.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cohort/address.hpp"
#include "cohort/detail/actor_core.hpp"
#include "cohort/detail/clock.hpp"
#include "cohort/detail/manager_protocol.hpp"
#include "cohort/task.hpp"

namespace cohort::detail {

/// A registered type: how to build its one shared instance and its methods by name.
struct ManagedType {
  std::string type;  // the class's name, checked by a client's get<T>
  /// For a class hosted as an actor.
  std::function<std::shared_ptr<ActorCore>(boost::asio::io_context& loop, const std::string& name)> make;
  /// For a class hosted on the loop (hosted_on_loop).
  std::function<std::shared_ptr<void>()> make_on_loop;
  std::map<std::string, ManagedMethod, std::less<>> methods;
  /// For a class that holds things for clients (holds_for_clients): lets go of what `connection` held.
  void (*client_gone)(void* object, std::uint64_t connection) = nullptr;
};

using ManagedRegistry = std::map<std::string, ManagedType, std::less<>>;

/// How a Manager's server builds an object a client asks for (dict(), list()...): the type, and the
/// object from the constructor's arguments as the client encoded them.
struct ManagedFactory {
  const ManagedType& (*type)();
  std::shared_ptr<void> (*make)(std::string_view arguments);
};

/// Registers a factory under `key` in this process (every process of an executable registers the same
/// ones, at static initialization); returns true.
bool register_managed_factory(std::string key, ManagedFactory factory);
/// The factory registered under `key`, or null.
const ManagedFactory* find_managed_factory(std::string_view key);

struct ManagerLimits {
  std::size_t max_connections = 1024;
  std::size_t max_message = std::size_t{64} << 20;
  std::size_t max_in_flight = 4096;  // per connection: reading pauses while this many calls are unanswered
  Clock::duration handshake_timeout = std::chrono::seconds(10);
};

class ManagerServer {
 public:
  /// Listens at `address` and builds one instance of each registered type (its constructor's exception
  /// is thrown here).
  ManagerServer(boost::asio::io_context& loop, const Address& address, std::string authkey,
                const ManagedRegistry& registry, ManagerLimits limits = {});
  ~ManagerServer();
  ManagerServer(const ManagerServer&) = delete;
  ManagerServer& operator=(const ManagerServer&) = delete;

  /// The bound address (TCP port 0: the port chosen).
  const Address& address() const noexcept;

  /// Serves until stop() or a client's shutdown request; then closes every connection and stops the
  /// objects (their on_stop runs).
  task<void> serve();
  /// Stops serving; from the server's loop.
  void stop() noexcept;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cohort::detail
