// managed::Caller: who calls a method of a managed object hosted on a manager's loop. A method whose
// first parameter is a Caller is given one: the proxy passes Caller::this_thread() and the server fills
// in the number of the connection the call came on, so that a lock knows its holder (a thread of one
// client) and can let go of what a client that went away held.
#pragma once

#include <cstdint>

#include "cohort/lock.hpp"

namespace cohort::managed {

struct Caller {
  /// The server's number for the client's connection (0 until the server fills it in).
  std::uint64_t connection = 0;
  /// The calling thread's token (the one cohort's own locks use): random, so unique among the threads
  /// of every process. What a lock's holder is; its calls may come on more than one connection.
  std::uint64_t thread = 0;

  static Caller this_thread() noexcept { return Caller{0, detail::this_thread_token()}; }

  bool operator==(const Caller&) const = default;

  template <class Archive>
  void serialize(Archive& archive) {
    archive(connection, thread);
  }
};

}  // namespace cohort::managed
