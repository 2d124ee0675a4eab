// What a manager's clients and its server say to each other over a socket, once the authkey handshake
// is done: the remote-call protocol of process actors, with the object named and the method named (by
// its name and its type, which mean the same in every program built with the class) instead of by
// address (which means something only in the server's own executable). Replies are ProcessActorReply.
#pragma once

#include <cereal/types/string.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include <boost/asio/io_context.hpp>

#include <functional>
#include <type_traits>
#include <vector>

#include "cohort/codec.hpp"
#include "cohort/detail/future_state.hpp"
#include "cohort/detail/remote_call.hpp"
#include "cohort/spawn.hpp"
#include "cohort/managed_methods.hpp"

namespace cohort::managed {
struct Caller;
}  // namespace cohort::managed

namespace cohort::detail {

class ActorCore;

enum class ManagerKind : std::uint8_t {
  ask = 0,       // a method call answered with its result
  tell = 1,      // a method call answered once handled (its failure is logged by the server)
  lookup = 2,    // is `object` served, with type `signature`? (Proxy creation)
  shutdown = 3,  // stop the server
  create = 4,    // build a new object from the factory named by `signature` (Manager's dict(), list()...)
  // Carry this connection's calls through shared memory from now on: the server answers with a Pipe's
  // end, sent as descriptors (SCM_RIGHTS), and no longer reads the socket. Only the first request of a
  // client on a Unix-domain socket; what a thread's blocking calls ride on (DirectManagerConnection).
  shared_memory_lane = 5,
  // The Unix-domain socket (abstract, so only this machine's network namespace reaches it) where a
  // server that listens on TCP also listens, with the same authkey: a client on the server's machine
  // opens its threads' connections there and so gets their shared-memory lanes. Answered with that
  // Address (a server on a Unix-domain socket: its own).
  same_machine_address = 6,
};

struct ManagerRequest {
  std::uint64_t id = 0;
  ManagerKind kind = ManagerKind::ask;
  std::string object;
  std::string method;     // the method's name
  std::string signature;  // the method's type (or, for lookup, the object's class)
  std::string arguments;  // cereal, as the method's parameter types

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, kind, object, method, signature, arguments);
  }
};

/// The server's side of one managed method: decodes the arguments and queues the call on `host`.
using ManagedEntry = void (*)(ActorCore& host, std::string_view arguments,
                              std::shared_ptr<FutureState<std::string>> reply);

/// The server's side of one method of an object hosted on the loop (not as an actor): decodes the
/// arguments and runs the method on `object` at once, a coroutine method alongside the others (a
/// managed::Caller first parameter is given the number of the `connection` the call came on). Returns a
/// coroutine method's control (null for a plain method), to cancel its waits when the client that
/// called it goes away.
using LoopEntry = std::shared_ptr<TaskControl> (*)(boost::asio::io_context& loop, void* object,
                                                   std::uint64_t connection, std::string_view arguments,
                                                   std::shared_ptr<FutureState<std::string>> reply);

struct ManagedMethod {
  std::string signature;
  ManagedEntry entry = nullptr;      // for an object hosted as an actor
  LoopEntry loop_entry = nullptr;    // for an object hosted on the loop
};

/// Managed types that declare `static constexpr bool hosted_on_loop = true` run on the server's loop,
/// their coroutine methods interleaved at their waits (a queue's blocking get must not hold up a put).
template <class T>
concept hosted_on_loop = requires { requires T::hosted_on_loop; };

/// Loop-hosted types that hold something for a client (a lock, for the thread that acquired it) let go
/// of it in `client_gone(connection)`, called once that client's connection has closed and its calls
/// have ended.
template <class T>
concept holds_for_clients = hosted_on_loop<T> && requires(T& object, std::uint64_t connection) {
  object.client_gone(connection);
};

/// The name of T's managed method number `index`.
template <class T>
const std::string& managed_method_name(int index) {
  static const std::vector<std::string> names = managed_method_names(managed_methods<T>::spelled);
  return names.at(static_cast<std::size_t>(index));
}

}  // namespace cohort::detail
