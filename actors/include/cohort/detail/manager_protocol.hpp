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

#include "cohort/detail/future_state.hpp"
#include "cohort/managed_methods.hpp"

namespace cohort::detail {

class ActorCore;

enum class ManagerKind : std::uint8_t {
  ask = 0,       // a method call answered with its result
  tell = 1,      // a method call answered once handled (its failure is logged by the server)
  lookup = 2,    // is `object` served, with type `signature`? (Proxy creation)
  shutdown = 3,  // stop the server
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

struct ManagedMethod {
  std::string signature;
  ManagedEntry entry = nullptr;
};

/// The name of T's managed method number `index`.
template <class T>
const std::string& managed_method_name(int index) {
  static const std::vector<std::string> names = managed_method_names(managed_methods<T>::spelled);
  return names.at(static_cast<std::size_t>(index));
}

}  // namespace cohort::detail
